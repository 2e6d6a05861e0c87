"""A service shaped otherwise than the monolith, copied by its declared mapping.

Billing's service here keeps `bills`, `bill_lines` and `settlements` with
renamed columns, money as decimal text and a currency column (see
`reshaped_billing`); nothing but the manifest's copy blocks tells backfill
and verify how the monolith's rows become the service's.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from reshaped_billing import COPY_BLOCKS, bill_lines, bills, settlements
from reshaped_billing import write_manifest as write_reshaped_manifest

from migrate.errors import ManifestError
from migrate.extract.schema import service_metadata
from migrate.hosts.service import ServiceHost
from migrate.hosts.tables import checkpoints
from migrate.kernel.events import Envelope
from migrate.kernel.sql import REPLICA, create_engine
from migrate.kernel.uow import queue_tables, set_role
from migrate.manifest import Manifest, load
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.sync.backfill import backfill, parity
from migrate.sync.mapping import table_maps
from monolith.billing.handlers import RecordPayment, record_payment
from monolith.billing.tables import invoice_lines, invoices, payments
from monolith.host import Monolith

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parents[1]
ORDERS = int(os.environ.get("MIGRATE_BACKFILL_KILL_ORDERS", "800"))


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    return load(write_reshaped_manifest(tmp_path))


@pytest.fixture
def monolith(database_url: str, manifest: Manifest) -> Monolith:
    upgrade(database_url)
    host = Monolith(database_url, manifest)
    seed(host, synthetic.generate(40))
    for invoice_id in (1, 2, 3):
        _pay(host, invoice_id, f"seed-{invoice_id}", "1.25")
    return host


@pytest.fixture
def service(tmp_path: Path, manifest: Manifest) -> ServiceHost:
    return _service(f"sqlite:///{tmp_path / 'billing.db'}", manifest)


def _service(url: str, manifest: Manifest) -> ServiceHost:
    engine = create_engine(url)
    for metadata in service_metadata("billing", manifest):
        metadata.create_all(engine)
    with engine.begin() as db:
        set_role(db, "billing", REPLICA)
    return ServiceHost("billing", url, manifest)


def _pay(host: Monolith, invoice_id: int, payment_id: str, amount: str) -> None:
    command = RecordPayment(invoice_id, payment_id, Decimal(amount))
    record_payment(command, host.unit_of_work("billing"))


def _events_after(host: Monolith, position: int) -> list[Envelope]:
    outbox, _ = queue_tables("billing")
    with host.engine.connect() as db:
        rows = db.execute(
            sa.select(outbox.c.payload)
            .where(outbox.c.position > position)
            .order_by(outbox.c.position)
        )
        return [Envelope.from_json(r.payload) for r in rows]


def _one(engine: sa.Engine, query: sa.Select) -> sa.Row:
    with engine.connect() as db:
        return db.execute(query).one()


def test_the_service_tables_are_filled_through_renames_converters_and_constants(
    monolith: Monolith, service: ServiceHost, manifest: Manifest
) -> None:
    context = manifest.context("billing")

    report = backfill(context, monolith.engine, service.engine)

    source = _one(
        monolith.engine, sa.select(invoices).where(invoices.c.invoice_id == 1)
    )
    copied = _one(service.engine, sa.select(bills).where(bills.c.bill_no == 1))
    lines = _one(monolith.engine, sa.select(sa.func.count()).select_from(invoice_lines))
    assert report.copied == {"bills": 40, "bill_lines": lines[0], "settlements": 3}
    assert copied.customer == source.customer_id
    assert copied.total == f"{Decimal(source.total_cents) / 100:.2f}"
    assert copied.paid == "1.25"
    assert copied.currency == "EUR"
    assert copied.version == source.version
    found = parity(context, monolith.engine, service.engine)
    assert found.differences == []
    assert (
        found.totals["invoices.total_cents"][0]
        == found.totals["invoices.total_cents"][1]
        > 0
    )
    assert found.totals["payments.amount_cents"] == (375, 375)


def test_verify_shows_the_monolith_row_converted_beside_the_service_row(
    monolith: Monolith, service: ServiceHost, manifest: Manifest
) -> None:
    context = manifest.context("billing")
    backfill(context, monolith.engine, service.engine)
    with service.engine.begin() as db:
        db.execute(bills.update().where(bills.c.bill_no == 7).values(total="0.01"))
        db.execute(bill_lines.delete().where(bill_lines.c.bill_no == 9))

    found = parity(context, monolith.engine, service.engine)

    source_total = _one(
        monolith.engine,
        sa.select(invoices.c.total_cents).where(invoices.c.invoice_id == 7),
    )[0]
    assert found.chunks["bills"] == (1, 1)
    assert found.chunks["bill_lines"] == (1, 1)
    bill = next(d for d in found.first_rows if d.table == "bills")
    assert bill.key == [7]
    assert bill.monolith is not None and bill.service is not None
    assert bill.monolith["total"] == f"{Decimal(source_total) / 100:.2f}"
    assert bill.service["total"] == "0.01"
    assert {"bill_no", "customer", "currency"} <= set(bill.monolith)
    line = next(d for d in found.first_rows if d.table == "bill_lines")
    assert line.key[0] == 9 and line.service is None
    assert found.totals["invoices.total_cents"] == (
        found.totals["invoices.total_cents"][0],
        found.totals["invoices.total_cents"][0] - source_total + 1,
    )
    assert "bills: 1 of 1 chunks differ" in found.differences


def test_a_write_during_the_backfill_reaches_the_reshaped_copy_once_in_order(
    monolith: Monolith,
    service: ServiceHost,
    manifest: Manifest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("migrate.sync.backfill.CHUNK", 10)
    context = manifest.context("billing")
    paid_during: list[bool] = []

    def pay_once_bills_are_half_copied(table: str, done: int, total: int) -> None:
        # Bill 1 is copied already; bill 40 is not yet.
        if table == "bills" and not paid_during:
            _pay(monolith, 1, "during-1", "2.00")
            _pay(monolith, 40, "during-40", "3.00")
            paid_during.append(True)

    report = backfill(
        context, monolith.engine, service.engine, pay_once_bills_are_half_copied
    )
    applied = [
        service.follow(e) for e in _events_after(monolith, report.source_position)
    ]

    assert paid_during
    assert applied == [True, False]  # bill 40 was copied with its payment already
    found = parity(context, monolith.engine, service.engine)
    assert found.differences == []
    paid = _one(service.engine, sa.select(bills.c.paid).where(bills.c.bill_no == 1))
    assert paid[0] == "3.25"


def test_billing_shaped_like_the_monolith_maps_every_table_to_itself() -> None:
    maps = table_maps(load().context("billing"))

    assert [(m.source.name, m.target.name) for m in maps] == [
        ("invoices", "invoices"),
        ("invoice_lines", "invoice_lines"),
        ("payments", "payments"),
    ]
    assert all(m.identity for m in maps)


KILLABLE_BACKFILL = """
import sys
from pathlib import Path

from migrate.kernel.sql import create_engine
from migrate.manifest import load
from migrate.sync.backfill import backfill

context = load(Path(sys.argv[1])).context("billing")
backfill(context, create_engine(sys.argv[2]), create_engine(sys.argv[3]))
"""


def _rows_seen(service: sa.Engine) -> int:
    with service.connect() as db:
        seen = db.execute(sa.select(sa.func.sum(checkpoints.c.rows_seen))).scalar()
    return int(seen or 0)


def test_a_reshaped_backfill_killed_three_times_resumes_to_parity(
    tmp_path: Path, sqlite_url: str
) -> None:
    manifest_path = write_reshaped_manifest(tmp_path)
    manifest = load(manifest_path)
    upgrade(sqlite_url)
    monolith = Monolith(sqlite_url, manifest)
    seed(monolith, synthetic.generate(ORDERS))
    for invoice_id in range(1, 200, 3):
        _pay(monolith, invoice_id, f"p-{invoice_id}", "0.50")
    service = _service(f"sqlite:///{tmp_path / 'billing.db'}", manifest)
    with monolith.engine.connect() as db:
        total = sum(
            int(db.execute(sa.select(sa.func.count()).select_from(t)).scalar() or 0)
            for t in (invoices, invoice_lines, payments)
        )
    command = [
        sys.executable,
        "-c",
        KILLABLE_BACKFILL,
        str(manifest_path),
        sqlite_url,
        str(service.engine.url),
    ]
    env = {
        **os.environ,
        "MIGRATE_BACKFILL_CHUNK": "10",
        "PYTHONPATH": os.pathsep.join([str(HERE), str(REPOSITORY)]),
    }
    chance = random.Random(int(os.environ.get("MIGRATE_KILL_SEED", "5")))

    kills, seen_at_kill = 0, []
    for _ in range(3):
        left = total - _rows_seen(service.engine)
        # Early in what is left, so a busy machine cannot miss the window.
        target = total - left + chance.randrange(left // 10, left // 4)
        copy = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
        while copy.poll() is None and _rows_seen(service.engine) < target:
            time.sleep(0.005)
        if copy.poll() is None:
            copy.send_signal(signal.SIGKILL)
            kills += 1
        copy.wait()
        seen_at_kill.append(_rows_seen(service.engine))
    finished = subprocess.run(command, env=env, capture_output=True, text=True)

    assert kills == 3
    assert seen_at_kill == sorted(seen_at_kill) and seen_at_kill[0] > 0
    assert finished.returncode == 0, finished.stderr
    found = parity(manifest.context("billing"), monolith.engine, service.engine)
    assert found.differences == []
    assert sum(source for source, _ in found.counts.values()) == total
    with service.engine.connect() as db:
        paid = db.execute(sa.select(sa.func.count()).select_from(settlements)).scalar()
    assert paid == 67


@pytest.mark.parametrize(
    "block, message",
    [
        (
            '[contexts.billing.copy.bills]\nfrom = "invoices"\n'
            'columns.total = { from = "total_cents", convert = "cents_to_euros" }\n',
            "converts with 'cents_to_euros'; the converters are",
        ),
        (
            '[contexts.billing.copy.bills]\nfrom = "orders"\n',
            "service table bills is filled from 'orders', which is not one of "
            "billing's tables",
        ),
        (
            COPY_BLOCKS.replace('columns.currency = { constant = "EUR" }\n', ""),
            "column 'currency' has no source",
        ),
        (
            COPY_BLOCKS.replace(
                'columns.settlement_id = "payment_id"',
                'columns.settlement_id = { from = "payment_id", convert = "to_text" }',
            ),
            "key column 'settlement_id' must come from a monolith column as it is",
        ),
        (
            COPY_BLOCKS + '[contexts.billing.copy.receipts]\nfrom = "payments"\n',
            "copy block 'receipts' names no table of the service",
        ),
        (
            COPY_BLOCKS.replace('columns.state = "status"', 'columns.state = "stat"'),
            "column 'state' comes from invoices.stat, which does not exist",
        ),
    ],
)
def test_a_wrong_copy_block_is_refused_before_a_row_moves(
    tmp_path: Path, sqlite_url: str, block: str, message: str
) -> None:
    def copy() -> None:
        context = load(write_reshaped_manifest(tmp_path, block)).context("billing")
        target = create_engine(f"sqlite:///{tmp_path / 'billing.db'}")
        backfill(context, create_engine(sqlite_url), target)

    with pytest.raises(ManifestError, match=message):
        copy()
    assert (
        not (tmp_path / "billing.db").exists()
        or not sa.inspect(
            create_engine(f"sqlite:///{tmp_path / 'billing.db'}")
        ).get_table_names()
    )
