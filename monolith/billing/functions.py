"""Billing's side effects as Lambda handlers, fed by SQS.

Each handler reports partial batch failures (`ReportBatchItemFailures`), so
one bad record does not send the whole batch round again; a record that keeps
failing reaches the queue's dead-letter queue. The side effects themselves
deliver once per business key, so a redelivered record sends nothing twice.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from migrate.kernel.events import Envelope
from monolith.billing import side_effects

logger = Logger(service="billing")
processor = BatchProcessor(event_type=EventType.SQS)


class FolderMailbox:
    """A mailbox that writes each message to a file named by its key.

    The file appears whole or not at all (written aside, then hard-linked
    into place), and linking fails when the key was delivered before.
    """

    def __init__(self, folder: Path):
        self.folder = folder

    def deliver(self, key: str, message: str) -> bool:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{key}.eml"
        with tempfile.NamedTemporaryFile(
            "w", dir=self.folder, delete=False, suffix=".tmp", encoding="utf-8"
        ) as draft:
            draft.write(message)
        try:
            os.link(draft.name, target)
        except FileExistsError:
            return False
        finally:
            os.unlink(draft.name)
        return True


def _mailbox() -> FolderMailbox:
    return FolderMailbox(Path(os.environ.get("MAIL_DIR", "mail")))


def _send_invoice_email(record: SQSRecord) -> None:
    envelope = Envelope.from_json(record.body)
    sent = side_effects.invoice_email(envelope.data["invoice"], _mailbox())
    logger.info(
        "invoice e-mail",
        extra={
            "invoice_id": envelope.aggregate_id,
            "sent": sent,
            "event_id": envelope.event_id,
        },
    )


def invoice_email(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_partial_response(
        event=event,
        record_handler=_send_invoice_email,
        processor=processor,
        context=context,
    )
