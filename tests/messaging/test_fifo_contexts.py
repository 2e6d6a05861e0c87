"""A context declared `fifo = true` in the manifest: FIFO topic, FIFO queues,
and each aggregate's events in order from its outbox to its followers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from migrate import names
from migrate.errors import ManifestError
from migrate.extract.generate import generate
from migrate.kernel.events import Envelope
from migrate.kernel.sql import create_engine, outbox_table
from migrate.manifest import DEFAULT_PATH, Manifest, load
from migrate.messaging import queue_ops
from migrate.messaging.clients import sns_client, sqs_client
from migrate.messaging.emulator import Emulator
from migrate.messaging.message import ReceivedMessage
from migrate.messaging.publisher import SnsPublisher
from migrate.messaging.relay import OutboxRelay
from migrate.messaging.topology import ensure
from migrate.system import topology
from monolith.billing.events import InvoiceIssued


def fifo_manifest(folder: Path, value: str = "true") -> Path:
    path = folder / "contexts.toml"
    header = "[contexts.billing]\n"
    path.write_text(
        DEFAULT_PATH.read_text().replace(header, f"{header}fifo = {value}\n")
    )
    return path


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    return load(fifo_manifest(tmp_path))


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


def test_a_fifo_context_has_a_fifo_topic_and_every_queue_it_feeds_is_fifo(
    manifest: Manifest,
) -> None:
    declared = topology(manifest, ["billing"])

    fifo_topics = {t.name for t in declared.topics if t.fifo}
    fifo_queues = {q.name for q in declared.queues if q.fifo}
    assert fifo_topics == {"northwind-billing"}
    assert fifo_queues == {
        "northwind-billing-service-sync",
        "northwind-billing-monolith-sync",
        "northwind-billing-invoice-email",
        "northwind-billing-invoice-pdf",
        "northwind-billing-payment-reminder",
    }
    # Billing consumes ordering's events, and ordering's topic is standard.
    assert not declared.queue("northwind-billing-consumes-ordering").fifo


def test_a_fifo_flag_that_is_not_a_boolean_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="fifo = 'yes'; it is true or false"):
        load(fifo_manifest(tmp_path, '"yes"'))


def test_the_service_of_a_fifo_context_consumes_its_fifo_queue(
    manifest: Manifest, tmp_path: Path
) -> None:
    extraction = generate(manifest, "billing", tmp_path / "extracted")

    service = (extraction.folder / "billing_service.py").read_text()
    assert '@consume("northwind-billing-service-sync.fifo")' in service
    assert '@consume("northwind-billing-consumes-ordering")' in service


def test_the_relay_publishes_each_invoices_events_in_order_to_its_followers(
    manifest: Manifest, emulator: Emulator, tmp_path: Path
) -> None:
    sns, sqs = sns_client(emulator.endpoint_url), sqs_client(emulator.endpoint_url)
    resources = ensure(topology(manifest, ["billing"]), sns, sqs)
    engine = create_engine(f"sqlite:///{tmp_path / 'monolith.db'}")
    metadata = sa.MetaData()
    outbox = outbox_table(metadata, "billing")
    metadata.create_all(engine)
    # Three invoices' versions, interleaved as their changes committed.
    written = [
        Envelope.wrap(InvoiceIssued({"invoice_id": i, "version": v}), "monolith")
        for v in (1, 2, 3)
        for i in (10, 11, 12)
    ]
    with engine.begin() as db:
        db.execute(
            outbox.insert(),
            [
                {
                    "event_id": e.event_id,
                    "event_type": e.event_type,
                    "aggregate_id": e.aggregate_id,
                    "schema_version": e.schema_version,
                    "origin": e.origin,
                    "occurred_at": e.occurred_at,
                    "payload": e.to_json(),
                }
                for e in written
            ],
        )
    topic = resources.topic_arn(names.topic("northwind", "billing"))
    assert topic.endswith("northwind-billing.fifo")

    relayed = OutboxRelay(engine, {"billing": topic}, SnsPublisher(sns)).relay_once()

    follow = resources.queue_url("northwind-billing-service-sync")
    assert follow.endswith(".fifo")
    got: list[dict] = []
    while len(got) < len(written):
        batch = queue_ops.receive(sqs, follow, wait_seconds=1)
        assert batch, f"the FIFO queue ran dry after {len(got)} messages"
        got += batch
        queue_ops.delete(sqs, follow, [m["ReceiptHandle"] for m in batch])
    assert relayed == len(written)
    for invoice in ("10", "11", "12"):
        mine = [m for m in got if m["Attributes"]["MessageGroupId"] == invoice]
        versions = [
            ReceivedMessage.from_sqs(m).envelope.data["invoice"]["version"]
            for m in mine
        ]
        assert versions == [1, 2, 3]


def test_the_deploy_template_of_a_fifo_context_lints_clean(manifest: Manifest) -> None:
    from migrate.deploy.checks import check
    from migrate.deploy.functions import Settings
    from migrate.deploy.template import template

    document = template(manifest, "billing", Settings())

    names_ = {
        r["Properties"]["QueueName"]
        for r in document["Resources"].values()
        if r["Type"] == "AWS::SQS::Queue"
    }
    assert "northwind-billing-service-sync.fifo" in names_
    assert check(document) == []
