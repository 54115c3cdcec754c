"""Print SIGNFLOW_TEST_* settings for the PostgreSQL + Redis run, if both answer.

Used by `make test`; prints nothing when either service is unreachable.
"""

from __future__ import annotations

import socket
import sys

PG = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
DB_NAME = "signflow_test"


def reachable(addr: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(addr, timeout=1):
            return True
    except OSError:
        return False


def main() -> int:
    if not (reachable(PG) and reachable(REDIS)):
        return 0
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres",
                             autocommit=True, connect_timeout=3) as conn:
            # a new database for every run: the schema comes from the migrations as
            # they are now, never from what an earlier run (or branch) left behind
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    except Exception as exc:  # noqa: BLE001 - any failure means: no service run
        print(f"PostgreSQL not usable: {exc}", file=sys.stderr)
        return 0
    print(f"SIGNFLOW_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/{DB_NAME} "
          "SIGNFLOW_TEST_REDIS_URL=redis://127.0.0.1:6379/15")
    return 0


if __name__ == "__main__":
    sys.exit(main())
