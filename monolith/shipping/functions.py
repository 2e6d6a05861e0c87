"""Shipping's side effects as Lambda handlers, fed by SQS.

The same rules as billing's handlers: partial batch failures are reported,
a failing record ends in the dead-letter queue, and each side effect runs
once per business key (the order id) through powertools' idempotency when
IDEMPOTENCY_TABLE is set, and through the outlet's own once-per-name
delivery always. A context owns its adapters, so these are shipping's own.

Where the results land: with OUTPUT_BUCKET set, S3 objects under
`shipment_notification/`; otherwise files in MAIL_DIR/shipping.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
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
from botocore.exceptions import ClientError

from migrate.kernel.events import Envelope
from monolith.shipping import side_effects

logger = Logger(service="shipping")
tracer = Tracer(service="shipping")
processor = BatchProcessor(event_type=EventType.SQS)

RECORD_SECONDS = 14 * 24 * 3600
_ALREADY_THERE = {"PreconditionFailed", "ConditionalRequestConflict"}


class FolderOutlet:
    """Messages as files in a folder, each written once (aside, then
    hard-linked into place; linking fails for a name delivered before)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def deliver(self, key: str, message: str) -> bool:
        self.folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "wb", dir=self.folder, delete=False, suffix=".tmp"
        ) as draft:
            draft.write(message.encode("utf-8"))
        try:
            os.link(draft.name, self.folder / f"{key}.eml")
        except FileExistsError:
            return False
        finally:
            os.unlink(draft.name)
        return True


class BucketOutlet:
    """Messages as S3 objects under a prefix, each written only if absent."""

    def __init__(self, bucket: str, prefix: str):
        self.bucket = bucket
        self.prefix = prefix

    def deliver(self, key: str, message: str) -> bool:
        try:
            _s3().put_object(
                Bucket=self.bucket,
                Key=f"{self.prefix}{key}.eml",
                Body=message.encode("utf-8"),
                IfNoneMatch="*",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _ALREADY_THERE:
                return False

            raise
        return True


@functools.cache
def _s3() -> Any:
    return boto3.session.Session().client("s3")


def _mailbox() -> FolderOutlet | BucketOutlet:
    bucket = os.environ.get("OUTPUT_BUCKET")
    if bucket:
        return BucketOutlet(bucket, "shipment_notification/")

    return FolderOutlet(Path(os.environ.get("MAIL_DIR", "mail")) / "shipping")


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
    return side_effects.shipment_notification(data, _mailbox())


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
