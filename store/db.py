"""Engine and session factory for SQLite (embedded) and PostgreSQL (production).

SQLite is written by the API and the worker at once, so it runs in WAL mode with a busy
timeout, and callers keep write transactions short (see DESIGN.md, Pitfalls).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Engine, create_engine, event, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

Row = TypeVar("Row")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


@lru_cache(maxsize=8)
def _factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=make_engine(url), expire_on_commit=False)


def session_factory(url: str) -> sessionmaker[Session]:
    """One engine per URL per process, shared by every thread."""
    return _factory(url)


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
) -> tuple[Sequence[Row], int]:
    """One page of `table`'s rows matching `filters`, newest first (ties by id), and how many
    match in all: what every list endpoint answers."""
    count = session.scalar(select(func.count()).select_from(table).where(*filters)) or 0
    rows = session.scalars(
        select(table)
        .where(*filters)
        .order_by(newest_first.desc(), table.id)  # type: ignore[attr-defined]
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, count
