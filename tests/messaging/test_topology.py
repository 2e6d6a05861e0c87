from __future__ import annotations

import json
from typing import Any

import pytest

from migrate.messaging.clients import sns_client, sqs_client
from migrate.messaging.emulator import Emulator
from migrate.messaging.errors import TopologyInvalid, UnknownResource
from migrate.messaging.topology import Queue, Subscription, Topic, Topology, ensure


def billing_topology(suffix: str, filter_policy: dict[str, Any] | None = None):
    return Topology(
        topics=[Topic(f"billing-{suffix}")],
        queues=[Queue(f"shipping-{suffix}", dead_letter_after=3, visibility_timeout=7)],
        subscriptions=[
            Subscription(f"billing-{suffix}", f"shipping-{suffix}", filter_policy)
        ],
    )


def test_ensuring_twice_finds_the_same_resources(sns: Any, sqs: Any, name) -> None:
    topology = billing_topology(name("t"))

    first = ensure(topology, sns, sqs)
    second = ensure(topology, sns, sqs)

    assert first == second
    topic_arn = first.topic_arn(topology.topics[0].name)
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic_arn)
    assert len(subscriptions["Subscriptions"]) == 1


def test_queue_gets_redrive_visibility_and_a_policy_for_its_topic(
    sns: Any, sqs: Any, name
) -> None:
    topology = billing_topology(name("t"))
    queue = topology.queues[0]

    resources = ensure(topology, sns, sqs)

    attributes = sqs.get_queue_attributes(
        QueueUrl=resources.queue_url(queue.name), AttributeNames=["All"]
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    policy = json.loads(attributes["Policy"])["Statement"][0]
    assert redrive["deadLetterTargetArn"] == resources.dead_letter_arn(queue.name)
    assert int(redrive["maxReceiveCount"]) == 3
    assert attributes["VisibilityTimeout"] == "7"
    assert resources.dead_letter_url(queue.name).endswith(f"{queue.name}-dlq")
    assert policy["Condition"]["ArnEquals"]["aws:SourceArn"] == [
        resources.topic_arn(topology.topics[0].name)
    ]


def test_subscription_delivers_raw_with_its_filter_policy(
    sns: Any, sqs: Any, name
) -> None:
    topology = billing_topology(name("t"), {"event_type": ["InvoiceIssued"]})

    resources = ensure(topology, sns, sqs)

    arn = next(iter(resources.subscription_arns.values()))
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert attributes["RawMessageDelivery"] == "true"
    assert json.loads(attributes["FilterPolicy"]) == {"event_type": ["InvoiceIssued"]}


def test_ensuring_a_changed_filter_policy_converges_the_subscription(
    sns: Any, sqs: Any, name
) -> None:
    suffix = name("t")
    ensure(billing_topology(suffix, {"event_type": ["InvoiceIssued"]}), sns, sqs)

    resources = ensure(billing_topology(suffix, None), sns, sqs)

    arn = next(iter(resources.subscription_arns.values()))
    attributes = sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
    assert json.loads(attributes.get("FilterPolicy") or "{}") == {}


def test_ensuring_after_a_restart_recreates_everything() -> None:
    topology = billing_topology("restart")
    with Emulator() as emulator:
        sns, sqs = sns_client(emulator.endpoint_url), sqs_client(emulator.endpoint_url)
        before = ensure(topology, sns, sqs)
        emulator.restart()
        sns, sqs = sns_client(emulator.endpoint_url), sqs_client(emulator.endpoint_url)

        after = ensure(topology, sns, sqs)

        queues = sqs.list_queues()["QueueUrls"]
        topics = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    assert after.queue_urls == before.queue_urls
    assert sorted(queues) == sorted(
        [*after.queue_urls.values(), *after.dead_letter_urls.values()]
    )
    assert topics == list(after.topic_arns.values())
    assert len(after.subscription_arns) == 1


def test_fifo_topic_and_queue_get_the_fifo_suffix(sns: Any, sqs: Any, name) -> None:
    topic, queue = name("ledger"), name("ledger-copy")
    topology = Topology(
        [Topic(topic, fifo=True)],
        [Queue(queue, fifo=True)],
        [Subscription(topic, queue)],
    )

    resources = ensure(topology, sns, sqs)

    assert resources.topic_arn(topic).endswith(f"{topic}.fifo")
    assert resources.queue_url(queue).endswith(f"{queue}.fifo")
    assert resources.dead_letter_url(queue).endswith(f"{queue}-dlq.fifo")


def test_fifo_topic_refuses_a_standard_queue() -> None:
    with pytest.raises(TopologyInvalid, match="FIFO topic feeds FIFO queues"):
        Topology(
            [Topic("ledger", fifo=True)],
            [Queue("ledger-copy")],
            [Subscription("ledger", "ledger-copy")],
        )


def test_subscription_to_an_undeclared_queue_names_it() -> None:
    with pytest.raises(UnknownResource, match="'nowhere'"):
        Topology([Topic("billing")], [], [Subscription("billing", "nowhere")])


def test_dead_letter_threshold_outside_its_range_is_refused() -> None:
    with pytest.raises(TopologyInvalid, match="runs 1-1000 receives"):
        Queue("shipping", dead_letter_after=0)


def test_queue_name_with_a_dot_is_refused() -> None:
    with pytest.raises(TopologyInvalid, match="letters, digits"):
        Queue("shipping.events")
