"""The consumers of events, each run on every message its contract describes.

Each message reaches the consumer's own code the way the queue hands it
over: the envelope as the SQS body, the contract's attributes as message
attributes; side-effect functions get the event Lambda builds from SQS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from consumer_pacts import (
    BUILDERS,
    billing_ordering,
    billing_replica,
    shipping_ordering,
)
from pact import Pact

from migrate.contracts import attributes
from migrate.contracts.pacts import PACT_METADATA, Contract
from migrate.extract.schema import service_metadata
from migrate.hosts.service import ServiceHost
from migrate.manifest import load
from migrate.messaging.lambda_runtime import LambdaContext
from migrate.messaging.message import ReceivedMessage
from migrate.schema import upgrade
from monolith.billing import api as billing_api
from monolith.host import Monolith
from monolith.shipping import api as shipping_api


def received(body: str | bytes | None, metadata: dict[str, Any]) -> ReceivedMessage:
    """The message as an SQS consumer receives it (raw delivery)."""
    return ReceivedMessage.from_sqs({
        "MessageId": "contract",
        "ReceiptHandle": "contract",
        "Body": body.decode() if isinstance(body, bytes) else body,
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": str(value)}
            for name, value in metadata.items() if name not in PACT_METADATA
        },
    })


def lambda_event(body: str | bytes | None, metadata: dict[str, Any]) -> dict[str, Any]:
    """The event Lambda builds from one SQS message of the queue."""
    return {"Records": [{
        "messageId": "contract",
        "receiptHandle": "contract",
        "body": body.decode() if isinstance(body, bytes) else body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {
            name: {"stringValue": str(value), "dataType": "String"}
            for name, value in metadata.items() if name not in PACT_METADATA
        },
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:contract",
        "awsRegion": "us-east-1",
    }]}


@pytest.fixture
def billing_service(tmp_path: Path) -> ServiceHost:
    host = ServiceHost("billing", f"sqlite:///{tmp_path / 'billing.db'}")
    for metadata in service_metadata("billing"):
        metadata.create_all(host.engine)
    return host


def test_billing_invoices_every_order_placed_its_contract_describes(
    billing_service: ServiceHost,
) -> None:
    invoiced = []

    def consume(body: str | bytes | None, metadata: dict[str, Any]) -> None:
        envelope = received(body, metadata).envelope
        billing_service.consume(envelope)
        invoiced.append(billing_api.invoice(billing_service.ports.query(),
                                            envelope.data["order_id"]))

    billing_ordering().verify(consume, "Async")

    assert [i["total"] for i in invoiced] == ["175.18"]


def test_shipping_plans_a_shipment_for_every_order_placed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'monolith.db'}"
    upgrade(url)
    monolith = Monolith(url)
    planned = []

    def consume(body: str | bytes | None, metadata: dict[str, Any]) -> None:
        envelope = received(body, metadata).envelope
        monolith.dispatch([envelope])
        planned.append(shipping_api.shipment(monolith.ports("shipping").query(),
                                             envelope.data["order_id"]))

    shipping_ordering().verify(consume, "Async")

    assert [(s["status"], s["ship_to"]["city"]) for s in planned] == [
        ("pending", "Reims")]


def test_the_replica_follows_every_billing_event_its_contract_describes(
    billing_service: ServiceHost,
) -> None:
    followed = []

    def follow(body: str | bytes | None, metadata: dict[str, Any]) -> None:
        envelope = received(body, metadata).envelope
        assert billing_service.follow(envelope)
        invoice = envelope.data["invoice"]
        followed.append(billing_api.invoice(billing_service.ports.query(),
                                            invoice["invoice_id"])["paid"])

    billing_replica().verify(follow, "Async")

    assert sorted(followed) == ["0.00", "25.00"]


def _side_effects() -> list[Any]:
    return [pytest.param(context, effect, id=f"{context.name}-{effect.name}")
            for context in load().contexts.values() for effect in context.side_effects]


@pytest.mark.parametrize(("context", "effect"), _side_effects())
def test_each_side_effect_handles_every_event_its_contract_describes(
    context: Any, effect: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAIL_DIR", str(tmp_path / "mail"))
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    for variable in ("IDEMPOTENCY_TABLE", "OUTPUT_BUCKET"):
        monkeypatch.delenv(variable, raising=False)
    consumer = f"{context.name}-{effect.name.replace('_', '-')}"
    handler = context.load(effect.function)
    answers = []

    def run(body: str | bytes | None, metadata: dict[str, Any]) -> None:
        function = LambdaContext(consumer, "us-east-1", "123456789012", 30.0)
        answers.append(handler(lambda_event(body, metadata), function))

    BUILDERS[f"{consumer}-{context.name}"]().verify(run, "Async")

    assert answers == [{"batchItemFailures": []}]
    assert [p for p in (tmp_path / "mail").rglob("*") if p.is_file()]


def _message_contracts() -> list[Any]:
    return [pytest.param(build, id=name) for name, build in BUILDERS.items()
            if any(True for _ in build().interactions("Async"))]


@pytest.mark.parametrize("build", _message_contracts())
def test_every_message_a_contract_describes_reaches_its_consumers_queue(
    build: Any,
) -> None:
    pact: Pact = build()
    contract = Contract(Path("-"), pact.consumer, pact.provider, (), "")
    subscriptions = attributes.subscriptions_of(load(), contract)
    refusals = []

    def route(body: str | bytes | None, metadata: dict[str, Any]) -> None:
        published = {k: str(v) for k, v in metadata.items() if k not in PACT_METADATA}
        envelope = received(body, metadata).envelope
        assert envelope.event_type == published["event_type"]
        refusals.append([attributes.refusal(s.filter_policy or {}, published)
                         for s in subscriptions])

    pact.verify(route, "Async")

    assert subscriptions
    assert all(None in per_message for per_message in refusals)
