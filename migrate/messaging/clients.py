"""boto3 clients for SNS and SQS, against the emulator or against AWS.

With an endpoint URL the clients talk to that endpoint (the emulator on
loopback) with dummy credentials and region us-east-1 unless told otherwise;
the emulator checks neither. Without one they use boto3's own resolution of
credentials and region (environment, profile, instance role), which is what
runs on AWS.

Each call builds its own boto3 session, because sessions are not safe to
share between threads while clients are. Nothing is built at import time.
Under eventlet, build clients only after `eventlet.monkey_patch()`.
"""

from __future__ import annotations

import boto3
from botocore.client import BaseClient
from botocore.config import Config

EMULATOR_REGION = "us-east-1"
_EMULATOR_CREDENTIALS = {
    "aws_access_key_id": "emulator",
    "aws_secret_access_key": "emulator",
}


def _config() -> Config:
    # The read timeout must outlast a 20 s long poll; connection errors are
    # retried a little here and otherwise left to the caller's own backoff.
    return Config(
        connect_timeout=5,
        read_timeout=30,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=32,
    )


def glance_config() -> Config:
    """For a look that must not hang a page: one try, short timeouts."""
    return Config(connect_timeout=2, read_timeout=5,
                  retries={"mode": "standard", "max_attempts": 1})


def client(
    service: str, endpoint_url: str | None = None, region: str | None = None,
    config: Config | None = None,
) -> BaseClient:
    config = config or _config()
    if endpoint_url:
        session = boto3.session.Session(
            region_name=region or EMULATOR_REGION, **_EMULATOR_CREDENTIALS
        )
        return session.client(service, endpoint_url=endpoint_url, config=config)

    session = boto3.session.Session(region_name=region)
    return session.client(service, config=config)


def sns_client(
    endpoint_url: str | None = None, region: str | None = None
) -> BaseClient:
    return client("sns", endpoint_url, region)


def sqs_client(
    endpoint_url: str | None = None, region: str | None = None,
    config: Config | None = None,
) -> BaseClient:
    return client("sqs", endpoint_url, region, config)
