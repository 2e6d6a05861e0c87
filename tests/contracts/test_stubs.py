"""The stub a verified service calls in the router's place: it answers from
the contracts the service's context holds with the contexts it calls."""

from __future__ import annotations

import requests

from migrate.contracts.stubs import held_by, serving
from migrate.contracts.verify import load_contracts
from migrate.manifest import load


def _orderings_providers() -> list[str]:
    """The contexts ordering's ports call, as the verification reads them."""
    manifest = load()
    return [port.provider
            for port in manifest.context("ordering").ports_to(manifest.contexts)]


def test_the_stub_answers_what_orderings_contracts_hold_and_names_the_rest() -> None:
    contracts = held_by("ordering", _orderings_providers(), load_contracts())

    with serving(contracts) as url:
        prices = requests.post(f"{url}/_api/catalog/prices",
                               json={"product_ids": [11]}, timeout=10)
        unknown = requests.post(f"{url}/_api/catalog/prices",
                                json={"product_ids": [12]}, timeout=10)

    assert sorted(c.provider for c in contracts) == [
        "catalog", "customers", "shipping"]
    assert prices.status_code == 200
    assert prices.json() == {"result": {"11": "14.00"}}
    assert unknown.status_code == 501
    assert "POST /_api/catalog/prices" in unknown.json()["message"]


def test_the_stub_answers_orderings_calls_of_shipping_from_its_contract() -> None:
    contracts = held_by("ordering", _orderings_providers(), load_contracts())

    with serving(contracts) as url:
        known = requests.post(f"{url}/_api/shipping/shipper_exists",
                              json={"shipper_id": 3}, timeout=10)
        unknown = requests.post(f"{url}/_api/shipping/shipper_exists",
                                json={"shipper_id": 99}, timeout=10)

    assert (known.status_code, known.json()) == (200, {"result": True})
    assert (unknown.status_code, unknown.json()) == (200, {"result": False})
