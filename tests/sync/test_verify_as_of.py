"""Verify compares as of a recorded outbox position; the lag, in events and s."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa

from migrate.errors import SyncBehind
from migrate.extract.schema import service_metadata
from migrate.hosts.service import ServiceHost
from migrate.kernel.events import Envelope
from migrate.kernel.sql import REPLICA, create_engine
from migrate.kernel.uow import queue_tables, set_role
from migrate.manifest import Context
from migrate.schema import upgrade
from migrate.seed import synthetic
from migrate.seed.load import seed
from migrate.sync.backfill import backfill
from migrate.sync.compare import compare
from migrate.sync.lag import behind
from monolith.billing.handlers import RecordPayment, record_payment
from monolith.billing.tables import invoices
from monolith.host import Monolith


@pytest.fixture
def monolith(sqlite_url: str) -> Monolith:
    upgrade(sqlite_url)
    host = Monolith(sqlite_url)
    seed(host, synthetic.generate(30))
    return host


@pytest.fixture
def service(tmp_path, monolith: Monolith) -> ServiceHost:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'billing.db'}"
    engine = create_engine(url)
    for metadata in service_metadata("billing"):
        metadata.create_all(engine)
    with engine.begin() as db:
        set_role(db, "billing", REPLICA)
    host = ServiceHost("billing", url)
    backfill(billing(monolith), monolith.engine, host.engine)
    return host


def billing(host: Monolith) -> Context:
    return host.manifest.context("billing")


def _pay(host: Monolith, invoice_id: int, payment_id: str) -> None:
    record_payment(
        RecordPayment(invoice_id, payment_id, Decimal("1.00")),
        host.unit_of_work("billing"),
    )


def _unapplied(host: Monolith, service: ServiceHost) -> list[tuple[int, Envelope]]:
    outbox, inbox = queue_tables("billing")
    with service.engine.connect() as db:
        applied = set(db.scalars(sa.select(inbox.c.event_id)))
    with host.engine.connect() as db:
        rows = db.execute(
            sa.select(outbox.c.position, outbox.c.payload).order_by(outbox.c.position)
        ).all()
    return [
        (position, envelope)
        for position, payload in rows
        if (envelope := Envelope.from_json(payload)).event_id not in applied
        and position > _backfilled_at(service)
    ]


def _backfilled_at(service: ServiceHost) -> int:
    from migrate.sync.lag import backfill_position

    return backfill_position("billing", service.engine)


def _apply_all(host: Monolith, service: ServiceHost) -> None:
    for _, event in _unapplied(host, service):
        service.follow(event)


def test_verify_waits_until_the_copy_applied_everything_up_to_its_position(
    monolith: Monolith, service: ServiceHost
) -> None:
    _pay(monolith, 3, "p-3")
    ((position, _),) = _unapplied(monolith, service)
    follower = threading.Timer(0.6, _apply_all, (monolith, service))
    said: list[str] = []

    follower.start()
    compared = compare(
        billing(monolith),
        monolith.engine,
        service.engine,
        timeout=20,
        progress=said.append,
    )

    assert compared.position == position
    assert compared.waited_seconds >= 0.5
    assert compared.rechecked == 0
    assert compared.parity.differences == []
    assert f"1 monolith events up to position {position} still to apply" in said


def test_verify_gives_up_after_its_timeout_naming_what_is_left(
    monolith: Monolith, service: ServiceHost
) -> None:
    _pay(monolith, 3, "p-3")
    _pay(monolith, 4, "p-4")

    with pytest.raises(SyncBehind, match="still had 2 of the monolith's billing"):
        compare(billing(monolith), monolith.engine, service.engine, timeout=0.3)


def test_rows_changed_after_the_position_are_compared_again_and_dropped(
    monolith: Monolith, service: ServiceHost
) -> None:
    recorded: list[int] = []

    def writes_go_on(line: str) -> None:
        if "as of the monolith's outbox position" in line:
            # Written after the position was taken, before the rows are read.
            recorded.append(int(line.rsplit(" ", 1)[1]))
            _pay(monolith, 5, "after-1")
            _pay(monolith, 29, "after-2")
        if "chunks differ" in line:
            _apply_all(monolith, service)

    compared = compare(
        billing(monolith), monolith.engine, service.engine, progress=writes_go_on
    )

    assert compared.position == recorded[0]
    assert compared.rechecked >= 1
    assert compared.settled == compared.rechecked
    assert compared.parity.differences == []


def test_a_real_difference_survives_the_second_comparison(
    monolith: Monolith, service: ServiceHost
) -> None:
    with service.engine.begin() as db:
        db.execute(
            invoices.update().where(invoices.c.invoice_id == 8).values(paid_cents=7)
        )

    compared = compare(billing(monolith), monolith.engine, service.engine)

    assert (compared.rechecked, compared.settled) == (1, 0)
    assert compared.parity.chunks["invoices"] == (1, 1)
    (row,) = compared.parity.first_rows
    assert (row.key, row.service["paid_cents"]) == ([8], 7)  # type: ignore[index]


def test_the_lag_counts_unapplied_events_and_the_age_of_the_oldest(
    monolith: Monolith, service: ServiceHost
) -> None:
    after = _backfilled_at(service)
    _pay(monolith, 3, "p-3")
    time.sleep(1.0)
    _pay(monolith, 4, "p-4")
    (_, first), (_, second) = _unapplied(monolith, service)

    def measured():  # type: ignore[no-untyped-def]
        return behind("billing", monolith.engine, service.engine, "monolith", after)

    both = measured()
    service.follow(first)
    one = measured()
    service.follow(second)
    none = measured()

    assert both.events == 2 and both.seconds >= 1.0
    assert one.events == 1 and one.seconds < both.seconds
    assert (none.events, none.seconds) == (0, 0.0)


def migrate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "migrate.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_and_verify_show_the_lag_and_the_position_they_compare_at(
    workspace: dict[str, str],
) -> None:
    migrate(workspace, "seed", "--orders", "6")
    migrate(workspace, "extract", "billing")
    from migrate.settings import Settings

    host = Monolith(Settings.from_env(workspace).monolith_url)
    _pay(host, 2, "p-2")
    time.sleep(1.0)

    status = json.loads(migrate(workspace, "status", "--json").stdout)
    lagging = migrate(workspace, "verify", "billing", "--timeout", "0.5", "--json")

    lags = status["contexts"]["billing"]["sync_lag"]
    assert lags["to_service"]["events"] == 1
    assert lags["to_service"]["seconds"] >= 1.0
    assert lags["to_monolith"] == {"events": 0, "seconds": 0.0}
    assert lagging.returncode == 1
    assert "still had 1 of the monolith's billing events up to position" in (
        lagging.stderr
    )
