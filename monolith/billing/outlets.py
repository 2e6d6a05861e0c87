"""Where billing's side effects deliver, behind its `Mailbox` and `Archive`.

Both hosts use these: the monolith when it runs the side effects in-process,
the Lambda functions when a service's events feed them. Each writes a name
once, so a side effect that runs twice for one key delivers once:

- with OUTPUT_BUCKET set, S3 objects under `<side effect>/` in that bucket,
  each written only if absent (`If-None-Match: *`);
- otherwise files: invoice e-mails in MAIL_DIR (default `mail`, relative to
  the working directory), reminders in MAIL_DIR/reminders, invoice PDFs in
  MAIL_DIR/documents.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

_ALREADY_THERE = {"PreconditionFailed", "ConditionalRequestConflict"}
# The folder under MAIL_DIR where each side effect's files land.
_FOLDERS = {"invoice_email": "", "invoice_pdf": "documents",
            "payment_reminder": "reminders"}


class FolderOutlet:
    """Files in a folder, each written once.

    A file appears whole or not at all (written aside, then hard-linked into
    place), and linking fails when the name was delivered before.
    """

    def __init__(self, folder: Path):
        self.folder = folder

    def deliver(self, key: str, message: str) -> bool:
        return self.store(f"{key}.eml", message.encode("utf-8"))

    def store(self, name: str, content: bytes) -> bool:
        self.folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "wb", dir=self.folder, delete=False, suffix=".tmp"
        ) as draft:
            draft.write(content)
        try:
            os.link(draft.name, self.folder / name)
        except FileExistsError:
            return False
        finally:
            os.unlink(draft.name)
        return True


class BucketOutlet:
    """Objects under a prefix of an S3 bucket, each written only if absent."""

    def __init__(self, bucket: str, prefix: str):
        self.bucket = bucket
        self.prefix = prefix

    def deliver(self, key: str, message: str) -> bool:
        return self.store(f"{key}.eml", message.encode("utf-8"))

    def store(self, name: str, content: bytes) -> bool:
        try:
            _s3().put_object(
                Bucket=self.bucket,
                Key=self.prefix + name,
                Body=content,
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


def outlet(side_effect: str) -> FolderOutlet | BucketOutlet:
    """The outlet `side_effect` delivers through, as the environment says."""
    if side_effect not in _FOLDERS:
        raise ValueError(f"billing has no side effect {side_effect!r}; it has "
                         f"{', '.join(sorted(_FOLDERS))}")

    bucket = os.environ.get("OUTPUT_BUCKET")
    if bucket:
        return BucketOutlet(bucket, f"{side_effect}/")

    mail = Path(os.environ.get("MAIL_DIR", "mail"))
    return FolderOutlet(mail / _FOLDERS[side_effect])
