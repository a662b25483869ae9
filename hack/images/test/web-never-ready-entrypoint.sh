#!/bin/sh
# Test image only: a web release whose server never becomes ready. `serve` is pointed at a
# PostgreSQL that does not exist, so /healthz answers and /readyz answers 503 naming the
# database; every other command (the operator's migration Job runs `migrate`) runs as usual.
if [ "${1:-}" = serve ]; then
    export PARTYQUIZ_WEB_DATABASE_URL="postgresql+asyncpg://partyquiz:unused@127.0.0.1:9/partyquiz"
fi
exec /usr/bin/tini -- partyquiz-web "$@"
