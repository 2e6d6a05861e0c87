"""Every failure the messaging layer raises, drawn once.

    MessagingError
    ├── EmulatorFailed        the local SNS/SQS emulator did not come up
    ├── TopologyInvalid       a declared topic, queue or subscription breaks a rule
    ├── UnknownResource       a name that the ensured topology does not hold
    ├── MalformedMessage      an SQS message that carries no event envelope
    ├── MessageTooLarge       an envelope over the SNS size limit
    ├── TooManyAttributes     an envelope with more attributes than SNS takes
    ├── PublishFailed         SNS refused some entries of a batch
    ├── RouteInvalid          a relay route that is not `context=topic-arn`
    ├── OutboxRowMalformed    an outbox row whose payload is not an envelope
    ├── RelayIncomplete       a relay round that left some contexts unpublished
    ├── QueueNotFound         a consumer's queue name that SQS does not know
    ├── HandlerNotFound       a Lambda handler spec that does not import
    ├── BatchFailed           a Lambda response or outcome that fails a whole batch
    └── SettingInvalid        a setting (batch size, timeout) out of its range

Transport errors from botocore (unreachable endpoint, throttling) are not
wrapped: callers that retry catch them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from migrate.errors import MigrateError


class MessagingError(MigrateError):
    """Root of the messaging layer's errors."""


class EmulatorFailed(MessagingError):
    def __init__(self, endpoint_url: str, reason: str, output: str = ""):
        detail = f"; its output ends with:\n{output}" if output else ""
        super().__init__(f"emulator at {endpoint_url} {reason}{detail}")
        self.endpoint_url = endpoint_url
        self.reason = reason
        self.output = output


class TopologyInvalid(MessagingError):
    def __init__(self, value: object, rule: str):
        super().__init__(f"{value!r}: {rule}")
        self.value = value
        self.rule = rule


class UnknownResource(MessagingError):
    def __init__(self, kind: str, name: str, known: Sequence[str]):
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(f"no {kind} named {name!r}; ensured {kind}s: {listed}")
        self.kind = kind
        self.name = name


class MalformedMessage(MessagingError):
    def __init__(self, message_id: str, reason: str):
        super().__init__(f"message {message_id} carries no event envelope: {reason}")
        self.message_id = message_id
        self.reason = reason


class MessageTooLarge(MessagingError):
    def __init__(self, event_id: str, size: int, limit: int):
        super().__init__(
            f"event {event_id} is {size} bytes on the wire; SNS takes at most {limit}"
        )
        self.event_id = event_id
        self.size = size
        self.limit = limit


class TooManyAttributes(MessagingError):
    def __init__(self, event_id: str, count: int, limit: int):
        super().__init__(
            f"event {event_id} has {count} message attributes; SNS takes at most "
            f"{limit}"
        )
        self.event_id = event_id
        self.count = count
        self.limit = limit


class PublishFailed(MessagingError):
    """Some entries of a batch were refused; `published` lists the event ids
    that SNS accepted before the first refusal, in the order given."""

    def __init__(
        self, topic_arn: str, failures: Mapping[str, str], published: Sequence[str]
    ):
        shown = "; ".join(f"{event_id}: {why}" for event_id, why in failures.items())
        super().__init__(f"{topic_arn} refused {len(failures)} event(s): {shown}")
        self.topic_arn = topic_arn
        self.failures = dict(failures)
        self.published = list(published)


class RouteInvalid(MessagingError):
    def __init__(self, spec: str, rule: str):
        super().__init__(f"route {spec!r}: {rule}")
        self.spec = spec
        self.rule = rule


class OutboxRowMalformed(MessagingError):
    def __init__(self, context: str, position: int, reason: str):
        super().__init__(
            f"{context}_outbox row {position} holds no event envelope ({reason}); "
            "rows after it wait, because an outbox publishes in position order"
        )
        self.context = context
        self.position = position
        self.reason = reason


class RelayIncomplete(MessagingError):
    def __init__(self, published: int, failures: Mapping[str, BaseException]):
        shown = "; ".join(f"{ctx}: {exc}" for ctx, exc in failures.items())
        super().__init__(
            f"published {published} event(s); these outboxes failed: {shown}"
        )
        self.published = published
        self.failures = dict(failures)


class QueueNotFound(MessagingError):
    def __init__(self, queue_name: str, endpoint_url: str | None, reason: str):
        where = endpoint_url or "AWS"
        super().__init__(f"queue {queue_name!r} not found at {where}: {reason}")
        self.queue_name = queue_name
        self.endpoint_url = endpoint_url


class HandlerNotFound(MessagingError):
    def __init__(self, spec: str, reason: str):
        super().__init__(
            f"handler {spec!r} ({reason}); give it as package.module:function"
        )
        self.spec = spec
        self.reason = reason


class BatchFailed(MessagingError):
    def __init__(self, reason: str):
        super().__init__(f"the whole batch failed: {reason}")
        self.reason = reason


class SettingInvalid(MessagingError):
    def __init__(self, name: str, value: object, rule: str):
        super().__init__(f"{name} {value!r}: {rule}")
        self.name = name
        self.value = value
        self.rule = rule
