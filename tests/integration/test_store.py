from __future__ import annotations

import threading
from datetime import date

from sqlalchemy import inspect

from autoinvoice.store import repo
from autoinvoice.store.db import make_engine, migrate, session_factory


def test_migrations_create_the_schema_and_are_idempotent(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    migrate(engine)
    migrate(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"events", "invoices", "invoice_lines", "history", "number_series", "payments",
            "webhook_events", "customer_map", "alembic_version", "documents",
            "platform_exchanges"} <= tables


def test_numbers_stay_gap_free_when_workers_race(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'n.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    numbers: list[str] = []
    lock = threading.Lock()

    def take(count: int) -> None:
        for _ in range(count):
            with sessions.begin() as session:
                number = repo.next_number(session, "t", "NW-{year}-{seq:05d}", date(2026, 5, 1))
            with lock:
                numbers.append(number)

    threads = [threading.Thread(target=take, args=(40,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(numbers) == [f"NW-2026-{n:05d}" for n in range(1, 161)]


def test_a_rolled_back_number_is_given_out_again(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        assert repo.next_number(session, "t", "{year}-{seq}", date(2026, 1, 1)) == "2026-1"
    session = sessions()
    session.begin()
    assert repo.next_number(session, "t", "{year}-{seq}", date(2026, 1, 1)) == "2026-2"
    session.rollback()
    session.close()
    with sessions.begin() as session:
        assert repo.next_number(session, "t", "{year}-{seq}", date(2026, 1, 1)) == "2026-2"
        assert repo.next_number(session, "t", "{year}-{seq}", date(2027, 1, 1)) == "2027-1"


def test_the_migrations_build_exactly_the_schema_the_models_describe(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from autoinvoice.store.models import Base

    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        assert compare_metadata(context, Base.metadata) == []
