"""`migrate extract`: a generated host, its own database, a verified copy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sqlalchemy as sa

from migrate.errors import AlreadyExtracted, ParityError, UnknownContext
from migrate.extract.run import extract
from migrate.kernel.sql import REPLICA, create_engine
from migrate.kernel.uow import role_of
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.sync.backfill import parity, verify
from migrate.sync.parity_records import last_parity
from monolith.billing.tables import invoices, payments
from monolith.host import Monolith


@pytest.fixture
def seeded_system(system):  # type: ignore[no-untyped-def]
    settings = system.settings
    settings.home.mkdir(parents=True)
    upgrade(settings.monolith_url)
    seed(Monolith(settings.monolith_url), synthetic.generate(60))
    return system


def test_extraction_writes_a_host_that_imports_the_context_rather_than_copying_it(
    seeded_system,  # type: ignore[no-untyped-def]
) -> None:
    report = extract(seeded_system, "billing")

    folder = report.extraction.folder
    service = (folder / "billing_service.py").read_text()
    assert "from nameko.web.handlers import http" in service
    assert '@http("POST", "/invoices/<int:invoice_id>/payments")' in service
    assert not list(folder.rglob("domain.py"))
    assert list((folder / "migrations" / "versions").glob("0001_*.py"))


def test_the_copy_matches_the_monolith_in_counts_and_totals(seeded_system) -> None:  # type: ignore[no-untyped-def]
    report = extract(seeded_system, "billing")

    assert report.parity.counts["invoices"] == (60, 60)
    source, copy = report.parity.totals["invoices.total_cents"]
    assert source == copy > 0
    service = create_engine(seeded_system.settings.service_url("billing"))
    with service.connect() as db:
        assert role_of(db, "billing") == REPLICA


def test_extraction_registers_billing_routes_at_weight_zero(seeded_system) -> None:  # type: ignore[no-untyped-def]
    extract(seeded_system, "billing")

    status = seeded_system.state.status()["billing"]
    assert status.read_weight == 0
    assert status.writer == "monolith"
    assert {(r.method, r.rule) for r in status.routes} == {
        ("GET", "/invoices/<int:invoice_id>"),
        ("GET", "/customers/<customer_id>/invoices"),
        ("POST", "/invoices/<int:invoice_id>/payments"),
    }


def test_an_existing_extraction_is_kept_unless_forced(seeded_system) -> None:  # type: ignore[no-untyped-def]
    extract(seeded_system, "billing")

    with pytest.raises(AlreadyExtracted, match="--force"):
        extract(seeded_system, "billing")
    assert extract(seeded_system, "billing", force=True).parity.counts["invoices"] == (
        60,
        60,
    )


def test_extracting_again_is_refused_while_its_service_serves(seeded_system) -> None:  # type: ignore[no-untyped-def]
    extract(seeded_system, "billing")
    seeded_system.state.set_weight("billing", 25, "test", "serve a share")

    with pytest.raises(AlreadyExtracted, match="serves up to 25 % of its reads"):
        extract(seeded_system, "billing", force=True)
    assert seeded_system.state.status()["billing"].read_weight == 25


def test_generating_twice_gives_the_same_bytes(seeded_system) -> None:  # type: ignore[no-untyped-def]
    folder = extract(seeded_system, "billing").extraction.folder
    first = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    extract(seeded_system, "billing", force=True)

    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == first


def test_an_unknown_context_is_refused_with_the_list_of_contexts(seeded_system) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownContext, match="billing, catalog, customers, ordering"):
        extract(seeded_system, "nosuch")


def test_verify_names_the_table_that_differs(seeded_system) -> None:  # type: ignore[no-untyped-def]
    extract(seeded_system, "billing")
    service = create_engine(seeded_system.settings.service_url("billing"))
    with service.begin() as db:
        db.execute(payments.delete())
        db.execute(
            sa.update(invoices)
            .values(total_cents=invoices.c.total_cents + 1)
            .where(invoices.c.invoice_id == 1)
        )
    context = seeded_system.manifest.context("billing")

    with pytest.raises(ParityError, match="sum of invoices.total_cents"):
        verify(context, create_engine(seeded_system.settings.monolith_url), service)


def test_the_generated_service_imports_under_nameko(seeded_system) -> None:  # type: ignore[no-untyped-def]
    folder = extract(seeded_system, "billing").extraction.folder

    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import billing_service; print(billing_service.BillingService.name)",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
    )

    assert loaded.stdout.strip() == "billing", loaded.stderr


def test_verify_shows_the_first_row_that_differs_even_when_counts_agree(
    seeded_system,  # type: ignore[no-untyped-def]
) -> None:
    extract(seeded_system, "billing")
    service = create_engine(seeded_system.settings.service_url("billing"))
    with service.begin() as db:
        db.execute(
            sa.update(invoices)
            .values(customer_id="ZZZZZ")
            .where(invoices.c.invoice_id == 7)
        )
    context = seeded_system.manifest.context("billing")

    found = parity(context, create_engine(seeded_system.settings.monolith_url), service)

    assert found.counts["invoices"] == (60, 60)
    assert found.chunks["invoices"] == (1, 1)
    (row,) = found.first_rows
    assert (row.table, row.key, row.service["customer_id"]) == (
        "invoices",
        [7],
        "ZZZZZ",
    )


def test_an_extraction_in_parity_moves_the_context_to_syncing(seeded_system) -> None:  # type: ignore[no-untyped-def]
    extract(seeded_system, "billing")

    phases = [
        (e.before, e.after, e.actor)
        for e in seeded_system.state.history("billing") if e.what == "phase"
    ]
    assert phases == [
        (None, "extracted", "migrate extract"),
        ("extracted", "syncing", "migrate extract"),
    ]


def test_an_extraction_keeps_the_parity_it_found(seeded_system) -> None:  # type: ignore[no-untyped-def]
    extract(seeded_system, "billing")

    record = last_parity(seeded_system.settings, "billing")

    assert record is not None
    assert (record.ok, record.by, record.counts["invoices"]) == (
        True, "migrate extract", (60, 60),
    )


def test_migrate_verify_keeps_a_failed_comparison_too(seeded_system) -> None:  # type: ignore[no-untyped-def]
    extract(seeded_system, "billing")
    service = create_engine(seeded_system.settings.service_url("billing"))
    with service.begin() as db:
        db.execute(
            sa.update(invoices)
            .values(total_cents=invoices.c.total_cents + 1)
            .where(invoices.c.invoice_id == 1)
        )

    answer = subprocess.run(
        [sys.executable, "-m", "migrate.cli", "verify", "billing"],
        env=seeded_system.settings.environ, capture_output=True, text=True,
        timeout=120,
    )

    record = last_parity(seeded_system.settings, "billing")
    assert answer.returncode == 1
    assert record is not None and not record.ok
    assert record.by == "migrate verify"
    assert "sum of invoices.total_cents" in " ".join(record.differences)


def test_status_and_history_show_the_phase(seeded_system) -> None:  # type: ignore[no-untyped-def]
    extract(seeded_system, "billing")
    env = seeded_system.settings.environ

    def migrate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "migrate.cli", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    status = json.loads(migrate("status", "--json").stdout)
    table = migrate("status").stdout
    history = migrate("history", "billing").stdout

    assert status["contexts"]["billing"]["phase"] == "syncing"
    assert "syncing" in table
    assert "billing: phase syncing" in history
    assert "extracted" in history
