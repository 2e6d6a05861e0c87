"""Calls of one context's API by another: the monolith's answers, the clients.

The monolith answers `POST /_api/<context>/<function>` for every function a
port of another context calls; a client built from a port's protocol calls
it over real HTTP and reads the answer back into the protocol's types.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from migrate.errors import ManifestError
from migrate.hosts.calls import (
    RemoteCallFailed,
    api_routes,
    client_class,
    decode,
    encode,
)
from migrate.manifest import load
from monolith.host import Monolith
from monolith.shipping.domain import Shipper
from monolith.shipping.handlers import register_shippers
from monolith.web import create_app


@pytest.fixture
def served(monolith: Monolith) -> Iterator[str]:
    """The monolith's app on a real socket; its base URL."""
    server = make_server("127.0.0.1", 0, create_app(monolith), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


def _client(port: str, url: str):  # type: ignore[no-untyped-def]
    manifest = load()
    ordering = manifest.context("ordering")
    spec = next(p for p in ordering.ports_to(manifest.contexts) if p.name == port)
    return client_class(ordering, spec)(url)


def test_the_monolith_answers_a_call_of_catalogs_prices(client: FlaskClient) -> None:
    reply = client.post("/_api/catalog/prices", json={"product_ids": [1, 2, 99]})

    assert reply.status_code == 200
    assert reply.json == {"result": {"1": "18.00", "2": "19.00"}}


def test_the_monolith_answers_a_call_of_shippings_shipper_exists(
    client: FlaskClient, monolith: Monolith,
) -> None:
    register_shippers(monolith.unit_of_work("shipping"),
                      [Shipper(3, "Federal Shipping")])

    known = client.post("/_api/shipping/shipper_exists", json={"shipper_id": 3})
    unknown = client.post("/_api/shipping/shipper_exists", json={"shipper_id": 99})

    assert (known.status_code, known.json) == (200, {"result": True})
    assert (unknown.status_code, unknown.json) == (200, {"result": False})


def test_a_call_nobody_declared_is_404_naming_what_is_answered(
    client: FlaskClient,
) -> None:
    reply = client.post("/_api/catalog/product", json={"product_id": 1})

    assert reply.status_code == 404
    assert reply.json["error"] == "unknown_api_call"
    assert "catalog answers no call 'product'; it answers prices" in (
        reply.json["message"]
    )


def test_an_argument_of_the_wrong_type_is_422_naming_it(client: FlaskClient) -> None:
    reply = client.post("/_api/catalog/prices", json={"product_ids": ["one"]})

    assert reply.status_code == 422
    assert reply.json["error"] == "invalid_arguments"
    assert "argument 'product_ids' is ['one']" in reply.json["message"]


def test_an_unknown_argument_is_422_naming_the_ones_taken(client: FlaskClient) -> None:
    reply = client.post("/_api/customers/exists", json={"customer": "ALFKI"})

    assert reply.status_code == 422
    assert reply.json["message"] == "exists() takes customer_id; not customer"


def test_a_body_that_is_not_json_is_400(client: FlaskClient) -> None:
    reply = client.post("/_api/customers/exists", data=b"{",
                        content_type="application/json")

    assert reply.status_code == 400
    assert reply.json["error"] == "malformed_json"


def test_a_client_built_from_the_protocol_reads_back_its_types(served: str) -> None:
    prices = _client("catalog", served).prices([2, 1])

    assert prices == {1: Decimal("18.00"), 2: Decimal("19.00")}
    assert _client("customers", served).exists("ALFKI") is True
    assert _client("customers", served).exists("NOONE") is False
    assert _client("shipping", served).shipper_exists(99) is False


def test_a_refused_call_raises_naming_the_url_and_the_status(served: str) -> None:
    catalog = _client("catalog", f"{served}/nowhere")

    with pytest.raises(RemoteCallFailed, match="/nowhere/_api/catalog/prices "
                                               "answered 404"):
        catalog.prices([1])


def test_an_unreachable_provider_raises_rather_than_answering() -> None:
    customers = _client("customers", "http://127.0.0.1:9")

    with pytest.raises(RemoteCallFailed, match="answered ConnectionError"):
        customers.exists("ALFKI")


def test_the_router_is_given_one_route_per_call_a_context_answers() -> None:
    assert api_routes(load(), "catalog") == [("POST", "/_api/catalog/prices", None)]
    assert api_routes(load(), "shipping") == [
        ("POST", "/_api/shipping/shipper_exists", None)]
    assert api_routes(load(), "ordering") == []


def test_values_travel_as_the_hints_say() -> None:
    sent = encode({3: [Decimal("1.50")], 4: [Decimal("2")]})

    assert sent == {"3": ["1.50"], "4": ["2"]}
    assert decode(sent, dict[int, list[Decimal]]) == {
        3: [Decimal("1.50")], 4: [Decimal("2")]
    }
    assert decode(None, int | None) is None
    assert decode([1, "a"], tuple[int, str]) == (1, "a")


def test_a_call_whose_hints_cannot_travel_is_refused_when_the_surface_is_built(
) -> None:
    from migrate.hosts.calls import _hints

    def prices(uow: object, since: object) -> dict[int, Decimal]:
        return {}

    with pytest.raises(ManifestError, match="argument 'since' is object, which an "
                                            "API call cannot carry"):
        _hints(prices)


@pytest.fixture
def catalog_finished(tmp_path, database_url: str):  # type: ignore[no-untyped-def]
    """The reference manifest with catalog finished (hosted by its service)."""
    from migrate.manifest import DEFAULT_PATH

    text = DEFAULT_PATH.read_text().replace(
        "[contexts.catalog]\n", "[contexts.catalog]\nfinished = true\n", 1
    )
    path = tmp_path / "contexts.toml"
    path.write_text(text)
    return load(path)


def test_a_port_onto_a_finished_context_calls_it_through_the_router(
    monolith: Monolith, served: str, catalog_finished,  # type: ignore[no-untyped-def]
) -> None:
    without = Monolith(monolith.database_url, catalog_finished, router_url=served)

    prices = without.ports("ordering").catalog.prices([1])

    assert prices == {1: Decimal("18.00")}
    assert "catalog" not in without.hosted


def test_a_finished_context_has_no_route_and_no_unit_of_work_in_the_monolith(
    monolith: Monolith, catalog_finished,  # type: ignore[no-untyped-def]
) -> None:
    from monolith.host import NotHosted

    without = Monolith(monolith.database_url, catalog_finished, router_url="http://x")

    assert create_app(without).test_client().get("/products/1").status_code == 404
    with pytest.raises(NotHosted, match="the monolith does not host catalog"):
        without.unit_of_work("catalog")


def test_a_port_onto_a_finished_context_needs_the_routers_address(
    monolith: Monolith, catalog_finished,  # type: ignore[no-untyped-def]
) -> None:
    from migrate.errors import ConfigurationError

    without = Monolith(monolith.database_url, catalog_finished)

    with pytest.raises(ConfigurationError, match="set MIGRATE_ROUTER_URL"):
        without.ports("ordering")
