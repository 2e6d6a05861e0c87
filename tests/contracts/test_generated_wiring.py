"""`migrate extract` writes how its service is verified, next to the service."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from migrate.contracts import wiring
from migrate.contracts.states import SERVICE, states_of
from migrate.contracts.verify import load_contracts, verify
from migrate.errors import NotExtracted
from migrate.settings import Settings


def test_extraction_writes_how_its_service_is_started_for_verification(
    extracted_dir: Path,
) -> None:
    service = wiring.load(extracted_dir / "billing", "billing")

    assert service.service_module == "billing_service"
    assert service.address_variable == "BILLING_HTTP_ADDRESS"
    assert service.queues == ("northwind-billing-service-sync",
                              "northwind-billing-consumes-ordering")


def test_the_wiring_names_a_handler_for_every_state_billing_is_asked_for(
    extracted_dir: Path,
) -> None:
    service = wiring.load(extracted_dir / "billing", "billing")
    states = states_of("billing", service.states)

    asked = {state for contract in load_contracts() if contract.provider == "billing"
             for interaction in contract.interactions
             for state in interaction.state_names}
    assert asked <= set(states.names(SERVICE))


def test_a_service_extracted_without_its_wiring_is_told_to_regenerate(
    tmp_path: Path, extracted_dir: Path,
) -> None:
    shutil.copytree(extracted_dir / "billing", tmp_path / "billing")
    (tmp_path / "billing" / "billing_contracts.py").unlink()
    settings = Settings.from_env({"MIGRATE_HOME": str(tmp_path / "var"),
                                  "MIGRATE_EXTRACTED": str(tmp_path)})

    with pytest.raises(NotExtracted, match="migrate extract billing --force"):
        verify(settings, providers=["billing"], host="service")
