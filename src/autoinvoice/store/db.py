"""Engine, sessions and migrations. SQLite by default (WAL, foreign keys, a busy timeout);
any SQLAlchemy URL works, PostgreSQL being the engine for several workers."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # SQLAlchemy, not the sqlite3 module, decides where transactions begin (see _sqlite_begin).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class _SqliteWriter:
    """SQLite has one writer. Every transaction takes the write lock when it starts
    (``BEGIN IMMEDIATE``), so a worker's read-then-write (claiming rows, numbering) never
    interleaves with another's. Threads of one process first queue on a Python lock: waiting
    there wakes the next thread the moment the lock is free, while SQLite's own busy handler
    sleeps in steps of up to 100 ms (it still arbitrates between processes)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def begin(self, conn: Any) -> None:
        self._lock.acquire()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise

    def end(self, conn: Any) -> None:
        self._lock.release()


def dialect_insert(session: Session) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT DO NOTHING (SQLite and PostgreSQL)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        writer = _SqliteWriter()
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", writer.begin)
        event.listen(engine, "commit", writer.end)
        event.listen(engine, "rollback", writer.end)
        return engine
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine, target: str = "head") -> None:
    """Bring the schema to the newest Alembic revision (idempotent).

    On SQLite, foreign keys are off while migrating: a batch migration rebuilds a table (copy,
    drop, rename), and dropping ``invoices`` with them on would cascade to its lines. The
    pragma only takes effect outside a transaction, so it is set on the raw connection first.
    """
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        if sqlite and raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, target)
        finally:
            if sqlite and raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
