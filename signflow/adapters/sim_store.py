"""Where the development stand-ins (BankID simulator, Freja fake) keep their orders.

Two implementations of :class:`OrderStore`:

:class:`MemoryOrderStore`
    one process's memory: the standalone ``signflow bankid-simulator`` and
    unit tests that build a stand-in of their own.  Orders are the live
    objects, so a test may reach in and change one.
:class:`DatabaseOrderStore`
    the ``simulator_orders`` table, chosen by the runtime whenever there is a
    database (always, in the app): every gunicorn worker, the RQ worker and the
    test process see the same orders.  An order is read back as a fresh copy
    each time; its state is sealed at rest (it holds personal numbers).

On PostgreSQL the table is the app's own; on SQLite, whose one writer lock
covers the whole file, it lives in a file of its own beside the app's
(:func:`shared_orders`), so that a stand-in's order never waits for a round
the app holds, nor the app for a stand-in, just as with the real services.

A stand-in changes orders inside :meth:`OrderStore.changing`: the orders it
reads with :meth:`OrderBook.get` there stay locked until the block ends
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's single writer lock, taken
first), so approve, collect and cancel never both act on the same order.

Each order is stored with the moment it may be forgotten (the stand-in's own
TTLs decide it); :meth:`OrderStore.purge` deletes those past it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, cast

from sqlalchemy import (
    URL,
    Connection,
    Table,
    create_engine,
    delete,
    event,
    false,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateIndex, CreateTable

from signflow.core.models import SimulatorOrder, utcnow
from signflow.core.ports import FieldSealer

O = TypeVar("O")  # noqa: E741 - an order of whichever stand-in

_TABLE = cast(Table, SimulatorOrder.__table__)


class OrderBook(Protocol[O]):
    """A stand-in's orders inside one :meth:`OrderStore.changing` or
    :meth:`OrderStore.reading` block."""

    def get(self, ref: str) -> O | None:
        """The order *ref* (locked until the block ends, when changing), or None."""
        ...

    def all(self) -> list[O]:
        """Every stored order (not locked: :meth:`get` one before changing it)."""
        ...

    def put(self, ref: str, order: O, keep_until: float) -> None:
        """Store *order* (new or changed); it may be forgotten after *keep_until*."""
        ...


class OrderStore(Protocol[O]):
    """Where one stand-in keeps its orders."""

    def changing(self, *, exclusive: bool = False
                 ) -> AbstractContextManager[OrderBook[O]]:
        """A transaction that may change orders: a context manager giving an
        :class:`OrderBook`; an exception inside undoes what it stored.

        With *exclusive*, no other exclusive block of this stand-in runs at the
        same time (a new order checks that its person has no other one).
        """
        ...

    def reading(self) -> AbstractContextManager[OrderBook[O]]:
        """A context manager giving an :class:`OrderBook` to look in (no locks)."""
        ...

    def purge(self, now: float) -> int:
        """Forget orders whose keep-until moment is before *now*; how many were."""
        ...

    def view(self) -> Mapping[str, O]:
        """Reference → order, for tests and pages that look inside."""
        ...


@dataclass(frozen=True)
class OrderCodec(Generic[O]):
    """How a stand-in's order becomes JSON and back (for the database)."""

    encode: Callable[[O], dict[str, Any]]
    decode: Callable[[dict[str, Any]], O]


class OrderStores(Protocol):
    """Makes the store of one stand-in (``bankid``, ``freja``) for its kind of order."""

    def __call__(self, provider: str, codec: OrderCodec[O]) -> OrderStore[O]: ...


# --- in memory -------------------------------------------------------------------------

class MemoryOrderStore(Generic[O]):
    """Orders in this process only; one lock serializes every block."""

    def __init__(self) -> None:
        self._orders: dict[str, O] = {}
        self._keep_until: dict[str, float] = {}
        self._lock = threading.RLock()

    @contextmanager
    def changing(self, *, exclusive: bool = False) -> Iterator[MemoryOrderStore[O]]:
        with self._lock:
            yield self

    reading = changing

    def get(self, ref: str) -> O | None:
        return self._orders.get(ref)

    def all(self) -> list[O]:
        return list(self._orders.values())

    def put(self, ref: str, order: O, keep_until: float) -> None:
        self._orders[ref] = order
        self._keep_until[ref] = keep_until

    def purge(self, now: float) -> int:
        with self._lock:
            gone = [ref for ref, until in self._keep_until.items() if until < now]
            for ref in gone:
                del self._orders[ref], self._keep_until[ref]
            return len(gone)

    def view(self) -> Mapping[str, O]:
        return self._orders


def in_memory(provider: str, codec: OrderCodec[O]) -> OrderStore[O]:
    """:class:`OrderStores` keeping each stand-in's orders in this process."""
    return MemoryOrderStore[O]()


# --- in the database -------------------------------------------------------------------

def shared_orders(engine: Engine, sealer: FieldSealer) -> OrderStores:
    """Where the stand-ins of an app on *engine* keep their orders: its PostgreSQL
    database; beside its SQLite file, in one of their own; in this process for an
    in-memory SQLite database, which no other process can open anyway."""
    if engine.dialect.name != "sqlite":
        return DatabaseOrders(engine, sealer)
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return in_memory
    path = Path(database)
    own = engine.url.set(database=str(path.with_name(f"{path.stem}-simulator{path.suffix}")))
    return DatabaseOrders(functools.partial(_sqlite_engine, own), sealer)


def _sqlite_engine(url: URL) -> Engine:
    """A SQLite file holding only ``simulator_orders`` (made here: Alembic knows the
    app's file only).  No pool: a runtime's close() does not know this engine."""
    engine = create_engine(url, poolclass=NullPool,
                           connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _write_ahead_log)
    with engine.begin() as conn:
        conn.execute(CreateTable(_TABLE, if_not_exists=True))
        for index in _TABLE.indexes:
            conn.execute(CreateIndex(index, if_not_exists=True))
    return engine


def _write_ahead_log(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


class DatabaseOrders:
    """:class:`OrderStores` on the ``simulator_orders`` table of *engine* (which
    has it: see :func:`shared_orders`), or of the engine *engine* makes on first
    use (no stray file or connection where no stand-in runs)."""

    def __init__(self, engine: Engine | Callable[[], Engine], sealer: FieldSealer) -> None:
        self._engine, self.sealer = engine, sealer

    @functools.cached_property
    def engine(self) -> Engine:
        return self._engine if isinstance(self._engine, Engine) else self._engine()

    def __call__(self, provider: str, codec: OrderCodec[O]) -> OrderStore[O]:
        return DatabaseOrderStore(self.engine, provider, codec, self.sealer)


class DatabaseOrderStore(Generic[O]):
    """One stand-in's rows of ``simulator_orders``; each block is one transaction."""

    def __init__(self, engine: Engine, provider: str, codec: OrderCodec[O],
                 sealer: FieldSealer) -> None:
        self.engine, self.provider, self.codec, self.sealer = engine, provider, codec, sealer

    @contextmanager
    def changing(self, *, exclusive: bool = False) -> Iterator[_Rows[O]]:
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                # SQLite has no row locks: an empty write takes the database's writer
                # lock before anything is read, which serializes the blocks (a block
                # that read first could not upgrade to a writer under a busy database)
                conn.execute(update(_TABLE).where(false())
                             .values(order_ref=_TABLE.c.order_ref))
            elif exclusive and conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(self._lock_key())))
            yield _Rows(self, conn, lock=True)

    @contextmanager
    def reading(self) -> Iterator[_Rows[O]]:
        with self.engine.connect() as conn:
            yield _Rows(self, conn, lock=False)

    def purge(self, now: float) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(delete(_TABLE).where(
                _TABLE.c.provider == self.provider, _TABLE.c.expires_at < _moment(now)))
            return result.rowcount

    def view(self) -> Mapping[str, O]:
        return _StoredOrders(self)

    def _lock_key(self) -> int:
        digest = hashlib.sha256(f"signflow simulator_orders {self.provider}".encode())
        return int.from_bytes(digest.digest()[:8], "big", signed=True)

    def seal(self, ref: str, order: O) -> str:
        return self.sealer.seal(json.dumps(self.codec.encode(order)),
                                bound_to=self._bound_to(ref))

    def open(self, ref: str, sealed: str) -> O:
        return self.codec.decode(json.loads(self.sealer.open(sealed,
                                                             bound_to=self._bound_to(ref))))

    def _bound_to(self, ref: str) -> str:
        return f"simulator_orders:{self.provider}:{ref}"


class _Rows(Generic[O]):
    """:class:`OrderBook` on one connection (inside its transaction when changing)."""

    def __init__(self, store: DatabaseOrderStore[O], conn: Connection, *, lock: bool) -> None:
        self.store, self.conn, self.lock = store, conn, lock

    def get(self, ref: str) -> O | None:
        stmt = select(_TABLE.c.state).where(_TABLE.c.provider == self.store.provider,
                                            _TABLE.c.order_ref == ref)
        if self.lock and self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        sealed = self.conn.execute(stmt).scalar_one_or_none()
        return None if sealed is None else self.store.open(ref, sealed)

    def all(self) -> list[O]:
        rows = self.conn.execute(select(_TABLE.c.order_ref, _TABLE.c.state).where(
            _TABLE.c.provider == self.store.provider).order_by(_TABLE.c.created_at))
        return [self.store.open(ref, sealed) for ref, sealed in rows]

    def put(self, ref: str, order: O, keep_until: float) -> None:
        values = {"state": self.store.seal(ref, order), "expires_at": _moment(keep_until),
                  "updated_at": utcnow()}
        changed = self.conn.execute(update(_TABLE).where(
            _TABLE.c.provider == self.store.provider, _TABLE.c.order_ref == ref
        ).values(**values))
        if changed.rowcount == 0:
            self.conn.execute(insert(_TABLE).values(
                provider=self.store.provider, order_ref=ref, created_at=values["updated_at"],
                **values))

    def refs(self) -> list[str]:
        return list(self.conn.scalars(select(_TABLE.c.order_ref).where(
            _TABLE.c.provider == self.store.provider).order_by(_TABLE.c.created_at)))


class _StoredOrders(Mapping[str, O]):
    """The rows as a read-only mapping; each look reads the table again."""

    def __init__(self, store: DatabaseOrderStore[O]) -> None:
        self.store = store

    def __getitem__(self, ref: str) -> O:
        with self.store.reading() as rows:
            order = rows.get(ref)
        if order is None:
            raise KeyError(ref)
        return order

    def __iter__(self) -> Iterator[str]:
        with self.store.reading() as rows:
            return iter(rows.refs())

    def __len__(self) -> int:
        with self.store.reading() as rows:
            return len(rows.refs())


def _moment(seconds: float) -> datetime:
    """A stand-in's clock reading (seconds since the epoch) as a timestamp."""
    return datetime.fromtimestamp(seconds, UTC)
