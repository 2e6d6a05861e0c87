"""Shipping's side effects as Lambda handlers, fed by SQS.

The same rules as billing's handlers: partial batch failures are reported,
a failing record ends in the dead-letter queue, and each side effect runs
once per business key (the order id) through powertools' idempotency when
IDEMPOTENCY_TABLE is set, and through the outlet's own once-per-name
delivery always. Each record runs the handler the monolith runs in-process
(`side_effects.py`), through shipping's outlets (`outlets.py`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from migrate.kernel.events import Envelope
from monolith.shipping import side_effects
from monolith.shipping.outlets import outlet

logger = Logger(service="shipping")
tracer = Tracer(service="shipping")
processor = BatchProcessor(event_type=EventType.SQS)

RECORD_SECONDS = 14 * 24 * 3600


@functools.cache
def _idempotency_store() -> DynamoDBPersistenceLayer | None:
    table = os.environ.get("IDEMPOTENCY_TABLE")
    if not table:
        logger.info("IDEMPOTENCY_TABLE is not set: the outlets alone deliver once")
        return None

    return DynamoDBPersistenceLayer(table_name=table)


def _once(
    action: Callable[..., bool], key: str, data: dict[str, Any], context: Any
) -> bool:
    """`action(data=data)`, unless it already ran for the same key."""
    store = _idempotency_store()
    if store is None:
        return action(data=data)

    config = IdempotencyConfig(
        event_key_jmespath=key,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=RECORD_SECONDS,
    )
    config.register_lambda_context(context)
    guarded = idempotent_function(
        data_keyword_argument="data", config=config, persistence_store=store
    )(action)
    return bool(guarded(data=data))


def _notify(data: dict[str, Any]) -> bool:
    return side_effects.shipment_notification(data, outlet("shipment_notification"))


def _shipment_notification_record(record: SQSRecord, lambda_context: Any) -> None:
    envelope = Envelope.from_json(record.body)
    sent = _once(_notify, "order_id", envelope.data, lambda_context)
    logger.info(
        "shipment notification",
        extra={
            "order_id": envelope.aggregate_id,
            "sent": sent,
            "event_id": envelope.event_id,
        },
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def shipment_notification(
    event: dict[str, Any], context: Any
) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event,
        record_handler=_shipment_notification_record,
        processor=processor,
        context=context,
    )
