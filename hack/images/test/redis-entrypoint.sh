#!/bin/sh
# Entrypoint of PartyQuiz's Redis test image, behaving like the official image's for what
# PartyQuiz uses: flags alone (`--appendonly yes ...`) or a config file path run redis-server
# with them; anything else runs as given. Without a config file redis-server listens on every
# interface. Debian keeps Redis's protected mode on (the official image turns it off), so
# clients from other hosts need a password (`--requirepass`), which PartyQuiz always sets. It
# runs as the image's user (uid 999) and writes only its --dir (default /data, the workdir).
set -eu

case "${1:-}" in
    -* | *.conf) set -- redis-server "$@" ;;
esac
if [ "$(id -u)" = 0 ] && [ "${1:-}" = redis-server ]; then
    echo "error: this test image runs as uid 999 only (the official image drops root itself; this one does not)" >&2
    exit 1
fi
umask 0077
exec "$@"
