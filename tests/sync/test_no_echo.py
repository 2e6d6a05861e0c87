"""Each side follows the other's changes, never its own: nothing echoes back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from migrate import names
from migrate.kernel.events import Envelope
from migrate.manifest import load
from migrate.messaging import queue_ops
from migrate.messaging.clients import sns_client, sqs_client
from migrate.messaging.emulator import Emulator
from migrate.messaging.message import ReceivedMessage
from migrate.messaging.publisher import SnsPublisher
from migrate.messaging.topology import Resources, ensure
from migrate.system import topology
from monolith.billing.events import InvoiceIssued


@pytest.fixture(scope="module")
def resources() -> Iterator[tuple[Emulator, Resources]]:
    with Emulator() as emulator:
        endpoint = emulator.endpoint_url
        built = ensure(
            topology(load(), ["billing"]), sns_client(endpoint), sqs_client(endpoint)
        )
        yield emulator, built


def _drain(endpoint: str, url: str) -> list[str]:
    got = queue_ops.receive(sqs_client(endpoint), url, wait_seconds=1)
    return [ReceivedMessage.from_sqs(m).envelope.origin for m in got]


@pytest.mark.parametrize(
    "origin, follower", [("monolith", "service"), ("service", "monolith")]
)
def test_a_change_reaches_only_the_other_side(
    resources: tuple[Emulator, Resources], origin: str, follower: str
) -> None:
    emulator, built = resources
    event = Envelope.wrap(InvoiceIssued({"invoice_id": 7}), origin)
    own = "service" if follower == "monolith" else "monolith"

    SnsPublisher(sns_client(emulator.endpoint_url)).publish(
        built.topic_arn(names.topic("northwind", "billing")), event
    )

    to_follower = _drain(
        emulator.endpoint_url,
        built.queue_url(names.follow_queue("northwind", "billing", follower)),
    )
    to_itself = _drain(
        emulator.endpoint_url,
        built.queue_url(names.follow_queue("northwind", "billing", own)),
    )
    assert to_follower == [origin]
    assert to_itself == []
