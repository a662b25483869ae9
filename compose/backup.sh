#!/bin/sh
# PartyQuiz's database backups on one server (compose.yaml's `backup` service), with the same
# pg_dump and pg_restore command lines as the operator's backup Jobs.
#   partyquiz-backup schedule          one dump a day at PARTYQUIZ_BACKUP_TIME (HH:MM, UTC)
#   partyquiz-backup now               one dump now
#   partyquiz-backup list              the dumps, newest first
#   partyquiz-backup restore FILE      replace the database's contents with a dump, in one
#                                      transaction (stop web and ws first)
#   partyquiz-backup check             health: the database answers and the last dump succeeded
# Dumps are <kind>-<UTC timestamp>.dump in PARTYQUIZ_BACKUP_DIR (default /backups): written to
# *.partial and renamed once pg_dump succeeded, so a crash never leaves something that looks
# like a backup; after each good dump the oldest of its kind beyond PARTYQUIZ_BACKUP_RETAIN
# (default 7) are deleted. Connection details come from PGHOST, PGUSER, PGPASSWORD, ...
set -eu

dir=${PARTYQUIZ_BACKUP_DIR:-/backups}
retain=${PARTYQUIZ_BACKUP_RETAIN:-7}
at=${PARTYQUIZ_BACKUP_TIME:-03:00}
status=$dir/.last-backup

log() { printf '%s partyquiz-backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

dump() {
    kind=$1
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    final="$dir/$kind-$stamp.dump"
    partial="$final.partial"
    trap 'rm -f "$partial"' EXIT
    if ! pg_dump --format=custom --no-owner --no-privileges --compress=6 --file "$partial"; then
        rm -f "$partial"
        trap - EXIT
        echo "failed $stamp" >"$status"
        log "dump failed"
        return 1
    fi
    mv "$partial" "$final"
    trap - EXIT
    echo "ok $stamp" >"$status"
    log "wrote $final ($(wc -c <"$final") bytes)"
    ls -1 "$dir/$kind"-*.dump 2>/dev/null | sort -r | tail -n +"$((retain + 1))" |
        while read -r old; do rm -f -- "$old"; log "removed $old"; done
}

seconds_until() {
    now=$(date -u +%s)
    next=$(date -u -d "today $1" +%s)
    [ "$next" -gt "$now" ] || next=$(date -u -d "tomorrow $1" +%s)
    echo $((next - now))
}

umask 077
case "${1:-}" in
    schedule)
        date -u -d "today $at" +%s >/dev/null 2>&1 || {
            echo "partyquiz-backup: PARTYQUIZ_BACKUP_TIME=$at is not a time of day (HH:MM)" >&2
            exit 2
        }
        case "$retain" in '' | *[!0-9]* | 0)
            echo "partyquiz-backup: PARTYQUIZ_BACKUP_RETAIN=$retain is not a count above 0" >&2
            exit 2 ;;
        esac
        # Stop at once on `compose stop`: sleep runs in the background so the trap fires.
        trap 'exit 0' TERM INT
        log "daily dumps at $at UTC into $dir, keeping $retain"
        while :; do
            sleep "$(seconds_until "$at")" &
            wait $! || true
            dump scheduled || true
        done
        ;;
    now) dump manual ;;
    list) ls -1t "$dir"/*.dump 2>/dev/null || echo "no dumps in $dir" ;;
    restore)
        [ -n "${2:-}" ] || { echo "usage: partyquiz-backup restore FILE" >&2; exit 2; }
        file=$2
        case "$file" in /*) ;; *) file=$dir/$file ;; esac
        [ -f "$file" ] || { echo "partyquiz-backup: no dump $file" >&2; exit 1; }
        pg_restore --no-owner --no-privileges --clean --if-exists --exit-on-error \
            --single-transaction --dbname "${PGDATABASE:?}" "$file"
        log "restored $file"
        ;;
    check)
        pg_isready --quiet
        ! grep -q '^failed' "$status" 2>/dev/null
        ;;
    *)
        echo "usage: partyquiz-backup schedule|now|list|restore FILE|check" >&2
        exit 2
        ;;
esac
