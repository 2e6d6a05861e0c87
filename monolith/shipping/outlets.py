"""Where shipping's side effects deliver, behind its `Mailbox`.

Both hosts use these: the monolith when it runs the side effects in-process,
the Lambda functions when a service's events feed them. Each writes a name
once: with OUTPUT_BUCKET set, S3 objects under `shipment_notification/`
(written only if absent); otherwise files in MAIL_DIR/shipping (MAIL_DIR
defaults to `mail`, relative to the working directory). A context owns its
adapters, so these are shipping's own.
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
SIDE_EFFECTS = ("shipment_notification",)


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


def outlet(side_effect: str) -> FolderOutlet | BucketOutlet:
    """The outlet `side_effect` delivers through, as the environment says."""
    if side_effect not in SIDE_EFFECTS:
        raise ValueError(f"shipping has no side effect {side_effect!r}; it has "
                         f"{', '.join(SIDE_EFFECTS)}")

    bucket = os.environ.get("OUTPUT_BUCKET")
    if bucket:
        return BucketOutlet(bucket, f"{side_effect}/")

    return FolderOutlet(Path(os.environ.get("MAIL_DIR", "mail")) / "shipping")
