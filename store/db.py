"""Engine and session factory for SQLite (embedded) and PostgreSQL (production).

SQLite is written by the API and the worker at once, so it runs in WAL mode with a busy
timeout, and callers keep write transactions short (see DESIGN.md, Pitfalls).

Each process has one engine per database URL. Its pool holds `DB_POOL_SIZE` connections and
opens up to `DB_MAX_OVERFLOW` more under load (SQLite keeps them all open instead: there is
no server to spare, and opening one costs four PRAGMAs); a caller that finds them all taken
waits at most `POOL_TIMEOUT_SECONDS`, then gets `sqlalchemy.exc.TimeoutError` (the API
answers 503). The API works on at most that many requests at once, so its own requests never
wait for a connection.
PostgreSQL connections are pinged when taken from the pool, so the first request after the
server restarts reconnects instead of failing, and a connection attempt gives up after
`CONNECT_TIMEOUT_SECONDS` when the server is unreachable.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Engine, create_engine, event, func, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from store.settings import Settings

Row = TypeVar("Row")

POOL_TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 5
ENGINES_KEPT = 8  # URLs a process keeps an engine for (tests open one database per test)


def make_engine(url: str, settings: Settings | None = None) -> Engine:
    """An engine whose pool is sized by `settings` (by default, the environment's)."""
    settings = settings or Settings()
    pool: dict[str, Any] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": POOL_TIMEOUT_SECONDS,
    }
    if url.startswith("sqlite"):
        if ":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite+pysqlite:"):
            pool = {}  # an in-memory database lives in one connection, not a pool
        else:  # no server to spare: keep every connection rather than reopen (four PRAGMAs)
            pool |= {"pool_size": pool["pool_size"] + pool["max_overflow"], "max_overflow": 0}
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **pool
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    connect_args: dict[str, Any] = {}
    if url.startswith("postgres"):
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **pool)


_factories: OrderedDict[str, sessionmaker[Session]] = OrderedDict()
_factories_lock = threading.Lock()


def session_factory(url: str, settings: Settings | None = None) -> sessionmaker[Session]:
    """One engine per URL per process, shared by every thread. The first caller's `settings`
    size its pool (the API passes its own; others get the environment's)."""
    with _factories_lock:
        factory = _factories.get(url)
        if factory is None:
            factory = sessionmaker(bind=make_engine(url, settings), expire_on_commit=False)
            _factories[url] = factory
            while len(_factories) > ENGINES_KEPT:
                _factories.popitem(last=False)
        else:
            _factories.move_to_end(url)
        return factory


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A short transaction: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def page(
    session: Session,
    table: type[Row],
    *,
    filters: Sequence[ColumnElement[bool]],
    newest_first: InstrumentedAttribute[Any],
    limit: int,
    offset: int,
    order: Sequence[ColumnElement[Any]] = (),
) -> tuple[Sequence[Row], int]:
    """One page of `table`'s rows matching `filters`, in `order` (by default newest first;
    ties always by id, so pages never overlap), and how many match in all: what every list
    endpoint answers."""
    count = session.scalar(select(func.count()).select_from(table).where(*filters)) or 0
    rows = session.scalars(
        select(table)
        .where(*filters)
        .order_by(*(order or [newest_first.desc()]), table.id)  # type: ignore[attr-defined]
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, count


def sort_order(
    sort: str, columns: Mapping[str, InstrumentedAttribute[Any]]
) -> list[ColumnElement[Any]]:
    """The ORDER BY of a list's `sort`: a column's name, descending with a leading "-"
    ("-created_at": newest first). The API has checked the name against `columns`."""
    column = columns[sort.removeprefix("-")]
    return [column.desc() if sort.startswith("-") else column.asc()]


def database_unreachable(exc: BaseException) -> bool:
    """Whether a database error means "cannot be reached right now" (down, restarting, a
    failover, the pool exhausted, a dropped connection, SQLite's file locked or unreadable)
    rather than a bug or a refused statement: the API answers it 503 and the worker waits it
    out, both retrying instead of failing."""
    if isinstance(exc, PoolTimeout | OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
