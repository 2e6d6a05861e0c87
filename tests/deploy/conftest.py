"""Fixtures: one moto server for the module's session, its clients, and a
topic feeding a queue built on demand."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from migrate.messaging.clients import client, sns_client, sqs_client
from migrate.messaging.emulator import Emulator
from migrate.messaging.topology import (
    Queue,
    Resources,
    Subscription,
    Topic,
    Topology,
    ensure,
)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


@pytest.fixture(scope="session")
def sns(emulator: Emulator) -> Any:
    return sns_client(emulator.endpoint_url)


@pytest.fixture(scope="session")
def sqs(emulator: Emulator) -> Any:
    return sqs_client(emulator.endpoint_url)


@pytest.fixture(scope="session")
def dynamodb(emulator: Emulator) -> Any:
    return client("dynamodb", emulator.endpoint_url)


@pytest.fixture(scope="session")
def s3(emulator: Emulator) -> Any:
    return client("s3", emulator.endpoint_url)


@pytest.fixture
def name() -> Callable[[str], str]:
    suffix = uuid.uuid4().hex[:8]
    return lambda stem: f"{stem}-{suffix}"


@pytest.fixture
def wire(sns: Any, sqs: Any, name: Callable[[str], str]) -> Callable[..., Resources]:
    def build(*, dead_letter_after: int = 5, visibility_timeout: int = 30) -> Resources:
        topology = Topology(
            topics=[Topic(name("events"))],
            queues=[
                Queue(
                    name("inbox"),
                    dead_letter_after=dead_letter_after,
                    visibility_timeout=visibility_timeout,
                )
            ],
            subscriptions=[Subscription(name("events"), name("inbox"))],
        )
        return ensure(topology, sns, sqs)

    return build
