#!/bin/sh
# The official image's first start, as far as compose's settings reach.
set -eu
bin=/usr/lib/postgresql/15/bin
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 0700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pw=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:?}" > "$pw"
    chown postgres "$pw"
    runuser -u postgres -- "$bin/initdb" -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" \
        --pwfile="$pw" --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256
    rm -f "$pw"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    runuser -u postgres -- "$bin/pg_ctl" -D "$PGDATA" -o "-c listen_addresses=''" -w start
    db=${POSTGRES_DB:-${POSTGRES_USER:-postgres}}
    if [ "$db" != postgres ]; then
        runuser -u postgres -- createdb -U "${POSTGRES_USER:-postgres}" "$db"
    fi
    runuser -u postgres -- "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop
fi
if [ "$1" = postgres ]; then
    shift
    exec runuser -u postgres -- "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' "$@"
fi
exec "$@"
