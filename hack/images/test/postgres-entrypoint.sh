#!/bin/bash
# Entrypoint of PartyQuiz's PostgreSQL test image, behaving like the official image's for what
# PartyQuiz uses:
# - `postgres [args]` (or only flags) with an empty PGDATA: initdb as POSTGRES_USER (default
#   postgres) with POSTGRES_PASSWORD, password authentication (scram-sha-256) for every TCP
#   client while local socket and loopback connections are trusted, then POSTGRES_DB (default:
#   the user's name) created through a temporary socket-only server; then the server runs.
# - with an initialised PGDATA (PG_VERSION present) nothing is touched: a changed
#   POSTGRES_PASSWORD is ignored, exactly like the official image.
# - anything else runs as given (`psql ...`, `sh -c ...`).
# It runs as the image's user (uid 999) and writes only PGDATA and /var/run/postgresql, so the
# root filesystem may be read-only. It never starts as root: there is no privilege to drop.
set -Eeuo pipefail

fail() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

if [ "${1:0:1}" = '-' ]; then
    set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
    exec "$@"
fi
if [ "$(id -u)" = 0 ]; then
    fail "this test image runs as uid 999 only (the official image drops root itself; this one does not)"
fi

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${PGDATA:?}"

mkdir -p "$PGDATA"
chmod 00700 "$PGDATA" 2>/dev/null || true
mkdir -p /var/run/postgresql
chmod 03775 /var/run/postgresql 2>/dev/null || true

if [ -s "$PGDATA/PG_VERSION" ]; then
    echo "PostgreSQL Database directory appears to contain a database; Skipping initialization"
    exec "$@"
fi

if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
    fail "database is uninitialized and superuser password is not specified.
       Set POSTGRES_PASSWORD to a non-empty value for the superuser
       (or POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password)."
fi

# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as in the official image
initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") \
    ${POSTGRES_INITDB_ARGS:-}

# initdb trusts local socket and loopback clients; every other client gives the password.
auth=${POSTGRES_HOST_AUTH_METHOD:-$(postgres -C password_encryption -D "$PGDATA")}
printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

# A server on the socket only: nothing can connect over TCP before the database is complete.
pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres)
exists=$("${psql[@]}" -v db="$POSTGRES_DB" -tA <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")
if [ -z "$exists" ]; then
    "${psql[@]}" -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
fi
pg_ctl -D "$PGDATA" -m fast -w stop

echo "PostgreSQL init process complete; ready for start up."
exec "$@"
