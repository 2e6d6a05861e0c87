"""The contract files: written by the consumer tests, read with care.

`MIGRATE_WRITE_CONTRACTS=1` makes the first test rewrite `contracts/*.json`
from the consumer tests' builders instead of comparing them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from consumer_pacts import BUILDERS

from migrate.contracts import pacts
from migrate.contracts.errors import MalformedContract
from migrate.contracts.seams import uncovered
from migrate.contracts.verify import CONTRACTS_DIR, load_contracts
from migrate.manifest import load


def _written(folder: Path, name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((folder / f"{name}.json").read_text())
    # The library versions that wrote a file say nothing about the contract.
    document["metadata"].pop("pactRust", None)
    document["metadata"].pop("pactPython", None)
    return document


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_the_contract_file_is_what_the_consumer_tests_declare(
    name: str, tmp_path: Path
) -> None:
    if os.environ.get("MIGRATE_WRITE_CONTRACTS") == "1":
        BUILDERS[name]().write_file(CONTRACTS_DIR, overwrite=True)

    BUILDERS[name]().write_file(tmp_path, overwrite=True)

    assert _written(tmp_path, name) == _written(CONTRACTS_DIR, name), (
        f"contracts/{name}.json differs from what the consumer tests declare; "
        "rewrite it with MIGRATE_WRITE_CONTRACTS=1")


def test_there_is_one_contract_file_per_consumer_and_provider() -> None:
    found = sorted(p.stem for p in CONTRACTS_DIR.glob("*.json"))

    assert found == sorted(BUILDERS)
    assert len({(c.consumer, c.provider) for c in load_contracts()}) == len(found)


def test_every_seam_of_the_monolith_has_a_contract() -> None:
    missing = uncovered(load(), load_contracts())

    assert [seam.text() for seam in missing] == []


def _message_pact(tmp_path: Path, message: dict[str, Any]) -> Path:
    path = tmp_path / "listener-billing.json"
    path.write_text(json.dumps({
        "consumer": {"name": "listener"},
        "provider": {"name": "billing"},
        "interactions": [{"type": "Asynchronous/Messages",
                          "description": "an InvoiceIssued event", **message}],
        "metadata": {"pactSpecification": {"version": "4.0"}},
    }))
    return path


PINNED = {"event_type": "InvoiceIssued", "schema_version": "1"}


def test_a_message_with_its_body_under_another_key_is_refused_when_loaded(
    tmp_path: Path,
) -> None:
    path = _message_pact(tmp_path, {"body": {"content": {"invoice_id": 1}},
                                    "metadata": PINNED})

    with pytest.raises(MalformedContract, match="under 'body'.*under 'contents'"):
        pacts.load(path)


def test_a_message_contract_pins_the_event_type_and_the_schema_version(
    tmp_path: Path,
) -> None:
    path = _message_pact(tmp_path, {"contents": {"content": {}},
                                    "metadata": {"event_type": "InvoiceIssued"}})

    with pytest.raises(MalformedContract, match="pins no 'schema_version'"):
        pacts.load(path)


def test_a_message_contract_may_not_leave_open_what_a_filter_policy_matches(
    tmp_path: Path,
) -> None:
    contract = json.loads((CONTRACTS_DIR / "billing-replica-billing.json").read_text())
    for message in contract["interactions"]:
        del message["metadata"]["origin"]
    (tmp_path / "billing-replica-billing.json").write_text(json.dumps(contract))

    with pytest.raises(MalformedContract, match="leaves 'origin' open"):
        load_contracts(tmp_path)


def test_an_http_interaction_without_a_status_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "reader-billing.json"
    path.write_text(json.dumps({
        "consumer": {"name": "reader"}, "provider": {"name": "billing"},
        "interactions": [{"type": "Synchronous/HTTP", "description": "a read",
                          "request": {"method": "GET", "path": "/invoices/1"},
                          "response": {}}],
    }))

    with pytest.raises(MalformedContract, match="numeric status"):
        pacts.load(path)
