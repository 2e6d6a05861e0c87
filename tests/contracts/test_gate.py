"""The deploy gate: yes or no, with reasons, from the latest verifications."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from contract_helpers import copy_of_code

from migrate.contracts.gate import can_i_deploy, refusal
from migrate.contracts.verify import CONTRACTS_DIR, verify
from migrate.settings import Settings


@pytest.fixture
def contracts(tmp_path: Path) -> Path:
    """A copy of the contract files, to change without harm."""
    folder = tmp_path / "contracts"
    shutil.copytree(CONTRACTS_DIR, folder, ignore=shutil.ignore_patterns("*.py",
                                                                         "states"))
    return folder


def test_a_context_never_verified_may_not_shift(settings: Settings) -> None:
    reason = refusal("billing", settings)

    assert reason is not None
    assert "billing was never verified on the monolith" in reason


def test_a_contract_changed_since_its_verification_needs_another(
    settings: Settings, contracts: Path,
) -> None:
    verify(settings, providers=["catalog"], folder=contracts)
    pact = contracts / "ordering-catalog.json"
    document = json.loads(pact.read_text())
    document["interactions"][0]["description"] = "a request for a product's price"
    pact.write_text(json.dumps(document))

    answer = can_i_deploy("catalog", settings, folder=contracts)

    assert not answer.deployable
    assert answer.reasons == (
        "ordering -> catalog changed since it was verified on the monolith "
        f"({answer_time(settings)})",)


def answer_time(settings: Settings) -> str:
    from migrate.contracts.results import latest

    found = latest(settings, "catalog", "monolith")
    assert found is not None
    return found.verified_at


def test_a_provider_that_breaks_a_consumers_contract_blocks_the_consumer(
    settings: Settings, tmp_path: Path,
) -> None:
    root = copy_of_code(tmp_path / "code", {"monolith/catalog/api.py": (
        "return {pid: p.unit_price for pid, p in found.items()}",
        "return {pid + 1: p.unit_price for pid, p in found.items()}")})
    verify(settings, providers=["catalog"], root=root)

    answer = can_i_deploy("ordering", settings)

    assert not answer.deployable
    assert any(r.startswith("on the monolith, ordering -> catalog: a call for "
                            "the price of a product: $.result")
               for r in answer.reasons), answer.reasons


def test_the_answer_lists_what_was_kept_when_it_is_yes(settings: Settings) -> None:
    verify(settings, providers=["catalog"], host="monolith")

    answer = can_i_deploy("catalog", settings)

    assert answer.deployable
    assert answer.kept[0].startswith("catalog keeps the contracts of ordering, "
                                     "router on the monolith")
