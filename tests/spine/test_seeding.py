"""`migrate seed` on the real Northwind dump, into SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from migrate.kernel.uow import queue_tables
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.errors import SeedError
from migrate.seed.load import seed
from migrate.seed.northwind import read_dump
from monolith.billing.tables import invoices
from monolith.host import Monolith
from monolith.shipping.tables import shipments
from monolith.web import create_app


@pytest.fixture
def seeded(database_url: str, northwind_dump: Path) -> Monolith:
    upgrade(database_url)
    host = Monolith(database_url)
    seed(host, read_dump(northwind_dump))
    return host


def test_seeding_northwind_issues_its_830_invoices_to_the_cent(
    seeded: Monolith,
) -> None:
    client = create_app(seeded).test_client()

    with seeded.engine.connect() as db:
        count = db.execute(sa.select(sa.func.count()).select_from(invoices)).scalar()
    invoice = client.get("/invoices/10248").json

    assert count == 830
    assert invoice["total"] == "472.38"
    assert [line["amount"] for line in invoice["lines"]] == [
        "168.00",
        "98.00",
        "174.00",
    ]


def test_history_is_recorded_as_published_so_no_old_invoice_is_mailed(
    seeded: Monolith,
) -> None:
    with seeded.engine.connect() as db:
        for context in seeded.manifest.contexts:
            outbox, _ = queue_tables(context)
            waiting = db.execute(
                sa.select(sa.func.count()).where(outbox.c.published_at.is_(None))
            ).scalar()
            assert waiting == 0, context


def test_shipped_orders_are_dispatched_and_the_rest_wait(seeded: Monolith) -> None:
    with seeded.engine.connect() as db:
        shipped = db.execute(
            sa.select(sa.func.count()).where(shipments.c.shipped_at.is_not(None))
        ).scalar()
        total = db.execute(sa.select(sa.func.count()).select_from(shipments)).scalar()

    assert total == 830
    assert 0 < shipped < 830


def test_seeding_a_database_that_holds_orders_is_refused(sqlite_url: str) -> None:
    upgrade(sqlite_url)
    host = Monolith(sqlite_url)
    seed(host, synthetic.generate(5))

    with pytest.raises(SeedError, match="already holds 5 orders"):
        seed(host, synthetic.generate(5))


def test_a_dump_cut_at_a_line_boundary_is_refused_naming_what_dangles(
    sqlite_url: str, northwind_dump: Path, tmp_path: Path
) -> None:
    lines = northwind_dump.read_text().splitlines(keepends=True)
    cut = next(n for n, line in enumerate(lines) if "INSERT INTO products" in line)
    short = tmp_path / "short.sql"
    short.write_text(
        "".join(
            line
            for n, line in enumerate(lines)
            if n < cut or "INSERT INTO products" not in line
        )
    )
    upgrade(sqlite_url)

    with pytest.raises(SeedError, match="product 11, which the data set does not"):
        seed(Monolith(sqlite_url), read_dump(short))
