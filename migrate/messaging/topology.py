"""Topics, queues and subscriptions declared once, created through the API.

A `Topology` names what a deployment needs: SNS topics (one per context that
announces events), SQS queues (one per consumer), and subscriptions of
queues to topics with optional filter policies on message attributes.
`ensure` makes the live resources match the declaration and returns their
ARNs and URLs by declared name:

- every queue gets a dead-letter queue `<name>-dlq` (kept 14 days) and a
  redrive policy that moves a message there after `dead_letter_after`
  receives without a delete;
- every subscribed queue gets a queue policy that lets exactly its topics
  send to it (the kit owns that policy and overwrites it);
- subscriptions deliver raw by default, so the envelope JSON is the SQS body
  and the envelope's attributes arrive as SQS message attributes.

`ensure` is idempotent: run it at every start-up, and again after moto
restarts (moto forgets everything). Mutable settings (visibility timeout,
redrive, filter policy, raw delivery) converge to the declaration; nothing
that is not declared is deleted (`retire` deletes a queue that is no longer
wanted, with its subscription and its dead-letter queue), and a queue's or
topic's FIFO-ness cannot change after creation. Filter policy changes take
up to 15 minutes to settle on AWS; moto applies them at once.

FIFO: a FIFO topic (`fifo=True`; `.fifo` is appended to the AWS name) can
only feed FIFO queues, and its messages are ordered per message group.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from botocore.client import BaseClient

from migrate.messaging.errors import TopologyInvalid, UnknownResource

_log = logging.getLogger(__name__)

FIFO_SUFFIX = ".fifo"
DEAD_LETTER_SUFFIX = "-dlq"
DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_QUEUE_NAME_LIMIT = 80
_TOPIC_NAME_LIMIT = 256


def _aws_name(kind: str, name: str, fifo: bool) -> str:
    stem = name.removesuffix(FIFO_SUFFIX)
    if name.endswith(FIFO_SUFFIX) and not fifo:
        raise TopologyInvalid(name, f"a {kind} named .fifo must be declared fifo=True")

    if not _NAME.match(stem):
        raise TopologyInvalid(
            name, f"{kind} names use letters, digits, '-' and '_' only"
        )

    return stem + FIFO_SUFFIX if fifo else stem


@dataclasses.dataclass(frozen=True)
class Topic:
    name: str
    fifo: bool = False

    def __post_init__(self) -> None:
        if len(self.aws_name) > _TOPIC_NAME_LIMIT:
            raise TopologyInvalid(
                self.name, f"topic names run at most {_TOPIC_NAME_LIMIT} characters"
            )

    @property
    def aws_name(self) -> str:
        return _aws_name("topic", self.name, self.fifo)


@dataclasses.dataclass(frozen=True)
class Queue:
    """A consumer's queue. `dead_letter_after` counts receives (SQS's
    maxReceiveCount, 1-1000); `visibility_timeout` is in seconds (0-43200)
    and should outlast the slowest handler, or a message still being
    handled is delivered again."""

    name: str
    dead_letter_after: int = 5
    visibility_timeout: int = 30
    fifo: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.dead_letter_after <= 1000:
            raise TopologyInvalid(
                self.dead_letter_after,
                f"dead_letter_after for queue {self.name} runs 1-1000 receives",
            )

        if not 0 <= self.visibility_timeout <= 43200:
            raise TopologyInvalid(
                self.visibility_timeout,
                f"visibility_timeout for queue {self.name} runs 0-43200 seconds",
            )

        if len(self.dead_letter_aws_name) > _QUEUE_NAME_LIMIT:
            raise TopologyInvalid(
                self.name,
                f"queue names run at most {_QUEUE_NAME_LIMIT} characters, "
                f"counting the {DEAD_LETTER_SUFFIX} of the dead-letter queue",
            )

    @property
    def aws_name(self) -> str:
        return _aws_name("queue", self.name, self.fifo)

    @property
    def dead_letter_name(self) -> str:
        return self.name.removesuffix(FIFO_SUFFIX) + DEAD_LETTER_SUFFIX

    @property
    def dead_letter_aws_name(self) -> str:
        return _aws_name("queue", self.dead_letter_name, self.fifo)


@dataclasses.dataclass(frozen=True)
class Subscription:
    """`topic` and `queue` are declared names. `filter_policy` is SNS's
    filter policy on message attributes (for example
    `{"event_type": ["InvoiceIssued"]}`); None delivers everything."""

    topic: str
    queue: str
    filter_policy: Mapping[str, Any] | None = None
    raw: bool = True

    def __post_init__(self) -> None:
        if self.filter_policy is None:
            return

        if not isinstance(self.filter_policy, Mapping) or not self.filter_policy:
            raise TopologyInvalid(
                self.filter_policy,
                f"filter policy of {self.topic} -> {self.queue} must be a "
                "non-empty mapping of attribute names to conditions",
            )

        try:
            json.dumps(self.filter_policy)
        except TypeError as exc:
            raise TopologyInvalid(
                self.filter_policy,
                f"filter policy of {self.topic} -> {self.queue} must be JSON ({exc})",
            ) from exc

    @property
    def filter_policy_json(self) -> str | None:
        if self.filter_policy is None:
            return None

        return json.dumps(self.filter_policy, sort_keys=True, separators=(",", ":"))


@dataclasses.dataclass(frozen=True)
class Topology:
    topics: tuple[Topic, ...] = ()
    queues: tuple[Queue, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()

    def __init__(
        self,
        topics: Iterable[Topic] = (),
        queues: Iterable[Queue] = (),
        subscriptions: Iterable[Subscription] = (),
    ):
        object.__setattr__(self, "topics", tuple(topics))
        object.__setattr__(self, "queues", tuple(queues))
        object.__setattr__(self, "subscriptions", tuple(subscriptions))
        self._check()

    def topic(self, name: str) -> Topic:
        for topic in self.topics:
            if topic.name == name:
                return topic

        raise UnknownResource("topic", name, [t.name for t in self.topics])

    def queue(self, name: str) -> Queue:
        for queue in self.queues:
            if queue.name == name:
                return queue

        raise UnknownResource("queue", name, [q.name for q in self.queues])

    def _check(self) -> None:
        _unique("topic", [t.name for t in self.topics])
        _unique("queue", [q.name for q in self.queues])
        _unique(
            "queue (counting dead-letter queues)",
            [q.aws_name for q in self.queues]
            + [q.dead_letter_aws_name for q in self.queues],
        )
        _unique("subscription", [f"{s.topic} -> {s.queue}" for s in self.subscriptions])
        for subscription in self.subscriptions:
            topic = self.topic(subscription.topic)
            queue = self.queue(subscription.queue)
            if topic.fifo != queue.fifo:
                raise TopologyInvalid(
                    f"{topic.name} -> {queue.name}",
                    "a FIFO topic feeds FIFO queues only, a standard topic "
                    "standard queues only",
                )


def _unique(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise TopologyInvalid(name, f"each {kind} is declared once")

        seen.add(name)


@dataclasses.dataclass(frozen=True)
class Resources:
    """What `ensure` created or found, by declared name."""

    topic_arns: Mapping[str, str]
    queue_urls: Mapping[str, str]
    queue_arns: Mapping[str, str]
    dead_letter_urls: Mapping[str, str]
    dead_letter_arns: Mapping[str, str]
    subscription_arns: Mapping[tuple[str, str], str]

    def topic_arn(self, name: str) -> str:
        return _lookup("topic", self.topic_arns, name)

    def queue_url(self, name: str) -> str:
        return _lookup("queue", self.queue_urls, name)

    def queue_arn(self, name: str) -> str:
        return _lookup("queue", self.queue_arns, name)

    def dead_letter_url(self, name: str) -> str:
        return _lookup("queue", self.dead_letter_urls, name)

    def dead_letter_arn(self, name: str) -> str:
        return _lookup("queue", self.dead_letter_arns, name)


def _lookup(kind: str, found: Mapping[str, str], name: str) -> str:
    try:
        return found[name]
    except KeyError:
        raise UnknownResource(kind, name, list(found)) from None


def ensure(topology: Topology, sns: BaseClient, sqs: BaseClient) -> Resources:
    """Create or converge every declared resource; return ARNs and URLs."""
    topic_arns = {t.name: _ensure_topic(sns, t) for t in topology.topics}

    queue_urls: dict[str, str] = {}
    queue_arns: dict[str, str] = {}
    dead_letter_urls: dict[str, str] = {}
    dead_letter_arns: dict[str, str] = {}
    for queue in topology.queues:
        dlq_url, dlq_arn = _ensure_dead_letter_queue(sqs, queue)
        senders = [
            topic_arns[s.topic] for s in topology.subscriptions if s.queue == queue.name
        ]
        url, arn = _ensure_queue(sqs, queue, dlq_arn, senders)
        queue_urls[queue.name], queue_arns[queue.name] = url, arn
        dead_letter_urls[queue.name], dead_letter_arns[queue.name] = dlq_url, dlq_arn

    subscription_arns = {
        (s.topic, s.queue): _ensure_subscription(
            sns, s, topic_arns[s.topic], queue_arns[s.queue]
        )
        for s in topology.subscriptions
    }
    _log.info(
        "ensured %d topic(s), %d queue(s), %d subscription(s)",
        len(topic_arns),
        len(queue_urls),
        len(subscription_arns),
    )
    return Resources(
        topic_arns=topic_arns,
        queue_urls=queue_urls,
        queue_arns=queue_arns,
        dead_letter_urls=dead_letter_urls,
        dead_letter_arns=dead_letter_arns,
        subscription_arns=subscription_arns,
    )


def retire(sns: BaseClient, sqs: BaseClient, topic_arn: str, queue: Queue) -> bool:
    """Unsubscribe a queue from its topic, then delete it and its dead-letter
    queue; False when the queue did not exist."""
    try:
        url = sqs.get_queue_url(QueueName=queue.aws_name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        return False

    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    subscription = _find_subscription(sns, topic_arn, arn)
    if subscription is not None:
        sns.unsubscribe(SubscriptionArn=subscription)
    sqs.delete_queue(QueueUrl=url)
    try:
        dead = sqs.get_queue_url(QueueName=queue.dead_letter_aws_name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        pass
    else:
        sqs.delete_queue(QueueUrl=dead)
    _log.info("retired queue %s", queue.aws_name)
    return True


def _ensure_topic(sns: BaseClient, topic: Topic) -> str:
    attributes = {"FifoTopic": "true"} if topic.fifo else {}
    arn: str = sns.create_topic(Name=topic.aws_name, Attributes=attributes)["TopicArn"]
    return arn


def _create_queue(sqs: BaseClient, aws_name: str, fifo: bool) -> tuple[str, str]:
    # Only the immutable attribute goes into create_queue: creating an
    # existing queue with other attributes than it has is an error, while
    # set_queue_attributes converges the mutable ones.
    attributes = {"FifoQueue": "true"} if fifo else {}
    url: str = sqs.create_queue(QueueName=aws_name, Attributes=attributes)["QueueUrl"]
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, found["Attributes"]["QueueArn"]


def _ensure_dead_letter_queue(sqs: BaseClient, queue: Queue) -> tuple[str, str]:
    url, arn = _create_queue(sqs, queue.dead_letter_aws_name, queue.fifo)
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={"MessageRetentionPeriod": str(DEAD_LETTER_RETENTION_SECONDS)},
    )
    return url, arn


def _ensure_queue(
    sqs: BaseClient, queue: Queue, dead_letter_arn: str, sender_arns: list[str]
) -> tuple[str, str]:
    url, arn = _create_queue(sqs, queue.aws_name, queue.fifo)
    redrive = {
        "deadLetterTargetArn": dead_letter_arn,
        "maxReceiveCount": str(queue.dead_letter_after),
    }
    attributes = {
        "VisibilityTimeout": str(queue.visibility_timeout),
        "RedrivePolicy": json.dumps(redrive),
    }
    if sender_arns:
        attributes["Policy"] = json.dumps(_queue_policy(arn, sender_arns))
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url, arn


def _queue_policy(queue_arn: str, topic_arns: list[str]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SubscribedTopicsSend",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": sorted(topic_arns)}},
            }
        ],
    }


def _ensure_subscription(
    sns: BaseClient, subscription: Subscription, topic_arn: str, queue_arn: str
) -> str:
    wanted = {"RawMessageDelivery": "true" if subscription.raw else "false"}
    if subscription.filter_policy_json is not None:
        wanted["FilterPolicy"] = subscription.filter_policy_json

    existing = _find_subscription(sns, topic_arn, queue_arn)
    if existing is None:
        created = sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes=wanted,
            ReturnSubscriptionArn=True,
        )
        arn: str = created["SubscriptionArn"]
        return arn

    current = sns.get_subscription_attributes(SubscriptionArn=existing)["Attributes"]
    if subscription.filter_policy is None and _policy(current) is not None:
        # SNS removes a filter policy that is set to an empty object.
        wanted["FilterPolicy"] = "{}"
    for name, value in wanted.items():
        if not _same_attribute(name, current.get(name), value):
            sns.set_subscription_attributes(
                SubscriptionArn=existing, AttributeName=name, AttributeValue=value
            )
    return existing


def _find_subscription(sns: BaseClient, topic_arn: str, queue_arn: str) -> str | None:
    pages = sns.get_paginator("list_subscriptions_by_topic").paginate(
        TopicArn=topic_arn
    )
    for page in pages:
        for found in page["Subscriptions"]:
            if found["Protocol"] == "sqs" and found["Endpoint"] == queue_arn:
                arn: str = found["SubscriptionArn"]
                return arn

    return None


def _policy(attributes: Mapping[str, str]) -> dict[str, Any] | None:
    text = attributes.get("FilterPolicy") or ""
    if not text.strip():
        return None

    policy = json.loads(text)
    return policy or None


def _same_attribute(name: str, current: str | None, wanted: str) -> bool:
    if name != "FilterPolicy":
        return (current or "").lower() == wanted.lower()

    return _policy({"FilterPolicy": current or ""}) == _policy({"FilterPolicy": wanted})
