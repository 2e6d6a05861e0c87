"""The stub a verified service calls in the router's place: it answers from
the contracts the service's context holds with the contexts it calls."""

from __future__ import annotations

import requests

from migrate.contracts.stubs import held_by, serving
from migrate.contracts.verify import load_contracts


def test_the_stub_answers_what_orderings_contracts_hold_and_names_the_rest() -> None:
    contracts = held_by("ordering", ["catalog", "customers"], load_contracts())

    with serving(contracts) as url:
        prices = requests.post(f"{url}/_api/catalog/prices",
                               json={"product_ids": [11]}, timeout=10)
        unknown = requests.post(f"{url}/_api/catalog/prices",
                                json={"product_ids": [12]}, timeout=10)

    assert sorted(c.provider for c in contracts) == ["catalog", "customers"]
    assert prices.status_code == 200
    assert prices.json() == {"result": {"11": "14.00"}}
    assert unknown.status_code == 501
    assert "POST /_api/catalog/prices" in unknown.json()["message"]
