"""Function zips and the service's artifact: complete, minimal, reproducible."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest

from migrate.deploy.functions import functions_of
from migrate.deploy.package import PROVIDED_BY_RUNTIME, build, function_zip
from migrate.extract.generate import Extraction
from migrate.manifest import load

from .helpers import issued

SITE_PACKAGES = Path(boto3.__file__).parent.parent


def _invoice_email(tmp_path: Path) -> Path:
    (function,) = [
        f for f in functions_of(load(), "billing") if f.effect == "invoice_email"
    ]
    return function_zip(function, tmp_path).path


def _names(archive: Path) -> list[str]:
    with zipfile.ZipFile(archive) as opened:
        return opened.namelist()


def test_the_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    first = build(load(), "billing", tmp_path / "one", None)
    second = build(load(), "billing", tmp_path / "two", None)

    assert [a.sha256 for a in first.functions] == [a.sha256 for a in second.functions]
    assert [a.path.read_bytes() for a in first.functions] == [
        a.path.read_bytes() for a in second.functions
    ]


def test_one_zip_per_function_named_after_it(tmp_path: Path) -> None:
    report = build(load(), "billing", tmp_path, None)

    assert sorted(a.path.name for a in report.functions) == [
        "northwind-billing-invoice-email.zip",
        "northwind-billing-invoice-pdf.zip",
        "northwind-billing-payment-reminder.zip",
    ]
    assert report.service is None


def test_a_function_zip_holds_its_modules_and_dependencies_only(
    tmp_path: Path,
) -> None:
    names = _names(_invoice_email(tmp_path))
    tops = {name.split("/")[0] for name in names}

    assert "monolith/billing/functions.py" in names
    assert "migrate/kernel/events.py" in names
    assert "aws_lambda_powertools/__init__.py" in names
    assert "aws_xray_sdk/__init__.py" in names
    assert "monolith/billing/adapters.py" not in names
    assert not tops & {"boto3", "botocore", "sqlalchemy", "nameko", "flask"}
    assert not [n for n in names if n.endswith(".pyc") or "__pycache__" in n]
    assert not [n for n in names if n.endswith(("RECORD", "INSTALLER"))]


def test_every_entry_carries_the_same_time_and_mode(tmp_path: Path) -> None:
    with zipfile.ZipFile(_invoice_email(tmp_path)) as opened:
        stamps = {(i.date_time, i.external_attr >> 16) for i in opened.infolist()}

    assert stamps == {((1980, 1, 1, 0, 0, 0), 0o100644)}


RUN_HANDLER = """
import json, os, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from monolith.billing import functions

class Context:
    function_name = "northwind-billing-invoice-email"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:x"
    aws_request_id = "r-1"

    def get_remaining_time_in_millis(self):
        return 30000

event = json.loads(sys.stdin.read())
print(json.dumps(functions.invoice_email(event, Context())))
"""


def test_the_unpacked_zip_runs_with_only_what_lambda_provides(
    tmp_path: Path,
) -> None:
    task = tmp_path / "task"
    with zipfile.ZipFile(_invoice_email(tmp_path)) as opened:
        opened.extractall(task)
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for top in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil",
                "urllib3", "six.py"):  # fmt: skip
        (runtime / top).symlink_to(SITE_PACKAGES / top)
    envelope = issued(40001)
    event = {"Records": [{
        "messageId": "m-1", "receiptHandle": "h-1", "body": envelope.to_json(),
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
        "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q",
        "awsRegion": "us-east-1",
    }]}  # fmt: skip
    environment = {"PATH": os.environ["PATH"], "MAIL_DIR": str(tmp_path / "mail")}

    # -I -S: no site-packages, no PYTHONPATH; the zip and the runtime's
    # libraries are all there is.
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUN_HANDLER, str(task), str(runtime)],
        input=json.dumps(event), capture_output=True, text=True, env=environment,
        timeout=60,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"batchItemFailures": []}
    assert (tmp_path / "mail" / "invoice-40001.eml").exists()
    assert PROVIDED_BY_RUNTIME >= {"boto3", "botocore"}


@pytest.fixture
def extraction(tmp_path: Path) -> Extraction:
    folder = tmp_path / "extracted" / "billing"
    (folder / "migrations" / "versions").mkdir(parents=True)
    (folder / "billing_service.py").write_text(
        "from migrate.hosts.nameko import ContextHost\n"
        "from migrate.messaging.nameko_sqs import consume\n"
    )
    (folder / "config.yaml").write_text("AMQP_URI: memory://\n")
    (folder / "migrations" / "env.py").write_text("import alembic\n")
    (folder / "billing.db").write_text("not shipped")
    return Extraction("billing", folder, "billing_service", [])


def test_the_service_artifact_holds_its_folder_modules_and_pins(
    tmp_path: Path, extraction: Extraction
) -> None:
    report = build(load(), "billing", tmp_path / "out", extraction)

    assert report.service is not None
    names = _names(report.service.path)
    with zipfile.ZipFile(report.service.path) as opened:
        pins = opened.read("requirements.txt").decode().split()
    assert {"billing_service.py", "config.yaml", "migrations/env.py"} <= set(names)
    assert "billing.db" not in names
    assert {
        "monolith/contexts.toml",
        "monolith/billing/handlers.py",
        "monolith/billing/replica.py",
        "migrate/hosts/nameko.py",
    } <= set(names)
    assert "nameko==2.14.1" in pins
    assert any(pin.startswith("sqlalchemy==") for pin in pins)


def test_the_service_artifact_is_the_same_bytes_for_the_same_inputs(
    tmp_path: Path, extraction: Extraction
) -> None:
    first = build(load(), "billing", tmp_path / "one", extraction)
    os.utime(extraction.folder / "config.yaml", (0, 0))
    second = build(load(), "billing", tmp_path / "two", extraction)

    assert first.service is not None and second.service is not None
    assert first.service.sha256 == second.service.sha256
    assert first.service.path.read_bytes() == second.service.path.read_bytes()
    with zipfile.ZipFile(first.service.path) as opened:
        entries = opened.infolist()
    assert [e.filename for e in entries] == sorted(e.filename for e in entries)
    assert {e.date_time for e in entries} == {(1980, 1, 1, 0, 0, 0)}


def test_a_changed_input_changes_the_service_artifact(
    tmp_path: Path, extraction: Extraction
) -> None:
    first = build(load(), "billing", tmp_path / "one", extraction)
    (extraction.folder / "config.yaml").write_text("AMQP_URI: memory://other\n")

    second = build(load(), "billing", tmp_path / "two", extraction)

    assert first.service is not None and second.service is not None
    assert first.service.sha256 != second.service.sha256


def test_a_service_with_tables_of_its_own_ships_their_module(
    tmp_path: Path, extraction: Extraction
) -> None:
    # Any project module billing does not import stands in for the
    # service's own tables here.
    own = "monolith.shipping.tables:metadata"
    plain = load()
    billing = dataclasses.replace(plain.context("billing"), service_metadata=own)
    reshaped = dataclasses.replace(
        plain, contexts={**plain.contexts, "billing": billing}
    )
    without = build(plain, "billing", tmp_path / "plain", extraction).service

    report = build(reshaped, "billing", tmp_path / "out", extraction)

    assert without is not None and report.service is not None
    assert "monolith/shipping/tables.py" not in _names(without.path)
    assert "monolith/shipping/tables.py" in _names(report.service.path)
