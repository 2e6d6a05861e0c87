"""`migrate contracts verify` and `migrate can-i-deploy`, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

MIGRATE = str(Path(sys.executable).parent / "migrate")


def migrate(
    tmp_path: Path, extracted_dir: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MIGRATE_HOME": str(tmp_path / "var"),
           "MIGRATE_EXTRACTED": str(extracted_dir)}
    return subprocess.run([MIGRATE, *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_verify_prints_a_json_report_and_exits_0_when_kept(
    tmp_path: Path, extracted_dir: Path,
) -> None:
    done = migrate(tmp_path, extracted_dir, "contracts", "verify",
                   "--provider", "customers", "--json")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert [(v["provider"], v["host"]) for v in report["verifications"]] == [
        ("customers", "monolith")]
    assert report["skipped"] == [
        "customers has no service yet: verified on the monolith only"]


def test_can_i_deploy_says_no_with_its_reason_and_exits_1(
    tmp_path: Path, extracted_dir: Path,
) -> None:
    done = migrate(tmp_path, extracted_dir, "can-i-deploy", "customers")

    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == "customers: no"
    assert "customers was never verified on the monolith" in done.stdout


def test_can_i_deploy_says_yes_after_a_verification(
    tmp_path: Path, extracted_dir: Path,
) -> None:
    migrate(tmp_path, extracted_dir, "contracts", "verify", "--provider", "customers")

    done = migrate(tmp_path, extracted_dir, "can-i-deploy", "customers")

    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines()[0] == "customers: yes"


def test_verifying_a_service_that_was_never_extracted_is_an_error(
    tmp_path: Path, extracted_dir: Path,
) -> None:
    done = migrate(tmp_path, extracted_dir, "contracts", "verify", "--provider",
                   "catalog", "--host", "service")

    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: catalog has no service in")


def test_a_malformed_contract_is_refused_with_exit_1_naming_the_file(
    tmp_path: Path, extracted_dir: Path,
) -> None:
    folder = tmp_path / "contracts"
    folder.mkdir()
    (folder / "listener-billing.json").write_text(json.dumps({
        "consumer": {"name": "listener"}, "provider": {"name": "billing"},
        "interactions": [{"type": "Asynchronous/Messages",
                          "description": "an InvoiceIssued event",
                          "body": {"content": {"invoice_id": 1}},
                          "metadata": {"event_type": "InvoiceIssued",
                                       "schema_version": "1"}}],
        "metadata": {"pactSpecification": {"version": "4.0"}},
    }))

    done = migrate(tmp_path, extracted_dir, "contracts", "verify",
                   "--contracts", str(folder))

    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: contract listener-billing.json is malformed: ")
    assert "under 'body'" in line
    assert not (tmp_path / "var" / "contracts").exists()
