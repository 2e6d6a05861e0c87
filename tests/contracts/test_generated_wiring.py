"""`migrate extract` writes how its service is verified, next to the service:
how to start it, and its provider states, served from the ones the context
declares once for either host."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from migrate.contracts import wiring
from migrate.contracts.states import MONOLITH, SERVICE, states_of
from migrate.contracts.verify import load_contracts, verify
from migrate.errors import NotExtracted
from migrate.settings import PROJECT_ROOT, Settings


def test_extraction_writes_how_its_service_is_started_for_verification(
    extracted_dir: Path,
) -> None:
    service = wiring.load(extracted_dir / "billing", "billing")

    assert service.service_module == "billing_service"
    assert service.address_variable == "BILLING_HTTP_ADDRESS"
    assert service.queues == ("northwind-billing-service-sync",
                              "northwind-billing-consumes-ordering")
    assert service.states == "billing_states"
    assert (extracted_dir / "billing" / "billing_states.py").exists()


def test_billings_states_are_written_once_for_both_hosts() -> None:
    declared = states_of("billing")

    assert declared.names(SERVICE) == declared.names(MONOLITH)
    assert "SERVICE" not in (PROJECT_ROOT / "contracts" / "states" /
                             "billing.py").read_text()


def test_the_generated_states_serve_every_state_billing_is_asked_for_on_the_service(
    extracted_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(extracted_dir / "billing"))
    service = wiring.load(extracted_dir / "billing", "billing")
    served = importlib.import_module(service.states).STATES

    asked = {state for contract in load_contracts() if contract.provider == "billing"
             for interaction in contract.interactions
             for state in interaction.state_names}
    assert asked <= set(served.names(SERVICE))
    assert served.names(MONOLITH) == []
    for state in asked:
        assert served.handler(state, SERVICE) is states_of("billing").handler(
            state, SERVICE)


def test_a_service_extracted_without_its_wiring_is_told_to_regenerate(
    tmp_path: Path, extracted_dir: Path,
) -> None:
    shutil.copytree(extracted_dir / "billing", tmp_path / "billing")
    (tmp_path / "billing" / "billing_contracts.py").unlink()
    settings = Settings.from_env({"MIGRATE_HOME": str(tmp_path / "var"),
                                  "MIGRATE_EXTRACTED": str(tmp_path)})

    with pytest.raises(NotExtracted, match="migrate extract billing --force"):
        verify(settings, providers=["billing"], host="service")


def test_a_service_extracted_without_its_states_is_told_to_regenerate(
    tmp_path: Path, extracted_dir: Path,
) -> None:
    shutil.copytree(extracted_dir / "billing", tmp_path / "billing")
    (tmp_path / "billing" / "billing_states.py").unlink()
    settings = Settings.from_env({"MIGRATE_HOME": str(tmp_path / "var"),
                                  "MIGRATE_EXTRACTED": str(tmp_path)})

    with pytest.raises(NotExtracted, match="no billing_states.py.*--force"):
        verify(settings, providers=["billing"], host="service")


def test_a_freshly_extracted_billing_verifies_on_its_service_with_no_edits(
    workspace: dict[str, str],
) -> None:
    def migrate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "migrate.cli", *args],
                              env=workspace, cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=300, check=False)

    seeded = migrate("seed", "--orders", "5")
    extracted = migrate("extract", "billing")
    folder = Path(workspace["MIGRATE_EXTRACTED"]) / "billing"
    generated = sorted(p.name for p in folder.iterdir() if p.is_file())

    done = migrate("contracts", "verify", "--provider", "billing", "--host",
                   "service", "--json")

    assert seeded.returncode == 0, seeded.stderr
    assert extracted.returncode == 0, extracted.stderr
    assert generated == ["billing_contracts.py", "billing_service.py",
                         "billing_states.py", "config.yaml"]
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    [verification] = report["verifications"]
    assert (verification["host"], verification["mismatches"]) == ("service", [])
    assert sum(p["interactions"] for p in verification["pacts"]) == 10
