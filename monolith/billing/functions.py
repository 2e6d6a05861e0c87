"""Billing's side effects as Lambda handlers, fed by SQS.

Each handler reports partial batch failures (`ReportBatchItemFailures`), so
one bad record does not send the whole batch round again; a record that keeps
failing reaches the queue's dead-letter queue.

Once per business key, twice over. With IDEMPOTENCY_TABLE set (the stack's
DynamoDB table on AWS, the emulator's in tests) powertools' idempotency
records each side effect's key (the invoice id; invoice and payment for a
reminder) before it runs and its outcome after, for 14 days, longer than a
dead-letter queue keeps a message. A redelivered record, after a timeout
half way through a batch say, then does not run the side effect again; the
record a killed invocation left "in progress" lapses at that invocation's
deadline. Beneath that, every outlet delivers once per name, which is all
there is when no table is set (`migrate up` on a laptop).

Each record runs the very handler the monolith runs in-process
(`side_effects.py`), through the outlets of `outlets.py`: files under
MAIL_DIR, or objects in OUTPUT_BUCKET.
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
from monolith.billing import side_effects
from monolith.billing.outlets import outlet

logger = Logger(service="billing")
tracer = Tracer(service="billing")
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


def _email_invoice(data: dict[str, Any]) -> bool:
    return side_effects.invoice_email(data, outlet("invoice_email"))


def _render_invoice(data: dict[str, Any]) -> bool:
    return side_effects.invoice_pdf(data, outlet("invoice_pdf"))


def _remind_of_balance(data: dict[str, Any]) -> bool:
    return side_effects.payment_reminder(data, outlet("payment_reminder"))


def _invoice_email_record(record: SQSRecord, lambda_context: Any) -> None:
    envelope = Envelope.from_json(record.body)
    sent = _once(_email_invoice, "invoice.invoice_id", envelope.data, lambda_context)
    logger.info(
        "invoice e-mail",
        extra={
            "invoice_id": envelope.aggregate_id,
            "sent": sent,
            "event_id": envelope.event_id,
        },
    )


def _invoice_pdf_record(record: SQSRecord, lambda_context: Any) -> None:
    envelope = Envelope.from_json(record.body)
    rendered = _once(_render_invoice, "invoice.invoice_id", envelope.data,
                     lambda_context)
    logger.info(
        "invoice PDF",
        extra={
            "invoice_id": envelope.aggregate_id,
            "rendered": rendered,
            "event_id": envelope.event_id,
        },
    )


def _payment_reminder_record(record: SQSRecord, lambda_context: Any) -> None:
    envelope = Envelope.from_json(record.body)
    key = "[invoice.invoice_id, payment_id]"
    sent = _once(_remind_of_balance, key, envelope.data, lambda_context)
    logger.info(
        "payment reminder",
        extra={
            "invoice_id": envelope.aggregate_id,
            "payment_id": envelope.data["payment_id"],
            "sent": sent,
            "event_id": envelope.event_id,
        },
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def invoice_email(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event,
        record_handler=_invoice_email_record,
        processor=processor,
        context=context,
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def invoice_pdf(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event,
        record_handler=_invoice_pdf_record,
        processor=processor,
        context=context,
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def payment_reminder(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event,
        record_handler=_payment_reminder_record,
        processor=processor,
        context=context,
    )
