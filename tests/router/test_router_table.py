"""Routes compile from Werkzeug rules and the most specific one wins."""

from __future__ import annotations

import random

import pytest

from migrate.router.errors import InvalidRule
from migrate.router.table import Matcher, Route, check_route


def _owner(routes: list[Route], method: str, path: str) -> str | None:
    found = Matcher(routes).match(method, path)
    return None if found is None else found[0].context


def test_a_literal_segment_beats_a_parameter() -> None:
    routes = [
        Route("GET", "/invoices/<invoice_id>", "billing"),
        Route("GET", "/invoices/summary", "reports"),
    ]

    assert _owner(routes, "GET", "/invoices/summary") == "reports"
    assert _owner(routes, "GET", "/invoices/17") == "billing"


def test_more_literal_segments_beat_a_path_parameter() -> None:
    routes = [
        Route("GET", "/customers/<path:rest>", "customers"),
        Route("GET", "/customers/<customer_id>/invoices", "billing"),
    ]

    assert _owner(routes, "GET", "/customers/7/invoices") == "billing"
    assert _owner(routes, "GET", "/customers/7/orders") == "customers"


def test_an_int_converter_beats_a_string_one() -> None:
    routes = [
        Route("GET", "/invoices/<name>", "documents"),
        Route("GET", "/invoices/<int:invoice_id>", "billing"),
    ]

    assert _owner(routes, "GET", "/invoices/42") == "billing"
    assert _owner(routes, "GET", "/invoices/draft") == "documents"


def test_an_earlier_literal_beats_a_later_one() -> None:
    routes = [
        Route("GET", "/a/<x>/c", "later"),
        Route("GET", "/a/b/<y>", "earlier"),
    ]

    assert _owner(routes, "GET", "/a/b/c") == "earlier"


def test_the_order_of_registration_does_not_matter() -> None:
    routes = [
        Route("GET", "/invoices/<path:rest>", "catch-all"),
        Route("GET", "/invoices/<name>", "documents"),
        Route("GET", "/invoices/<int:invoice_id>", "billing"),
        Route("GET", "/invoices/summary", "reports"),
    ]
    paths = ["/invoices/summary", "/invoices/5", "/invoices/x", "/invoices/x/y"]
    expected = [_owner(routes, "GET", path) for path in paths]

    for seed in range(10):
        shuffled = routes[:]
        random.Random(seed).shuffle(shuffled)
        assert [_owner(shuffled, "GET", path) for path in paths] == expected
    assert expected == ["reports", "billing", "documents", "catch-all"]


def test_an_int_parameter_does_not_match_letters() -> None:
    routes = [Route("GET", "/invoices/<int:invoice_id>", "billing")]

    assert _owner(routes, "GET", "/invoices/abc") is None


def test_a_path_parameter_spans_segments() -> None:
    matcher = Matcher([Route("GET", "/files/<path:name>", "documents")])

    found = matcher.match("GET", "/files/2026/12/invoice.pdf")

    assert found is not None
    assert found[1] == {"name": "2026/12/invoice.pdf"}


def test_parameters_are_the_text_of_the_path() -> None:
    matcher = Matcher([Route("GET", "/invoices/<int:invoice_id>", "billing")])

    found = matcher.match("GET", "/invoices/0042")

    assert found is not None
    assert found[1] == {"invoice_id": "0042"}


def test_head_matches_a_get_route() -> None:
    routes = [Route("GET", "/invoices/<int:invoice_id>", "billing")]

    assert _owner(routes, "HEAD", "/invoices/1") == "billing"


def test_another_method_does_not_match() -> None:
    routes = [Route("GET", "/invoices/<int:invoice_id>", "billing")]

    assert _owner(routes, "DELETE", "/invoices/1") is None


def test_a_trailing_slash_is_a_different_path() -> None:
    routes = [Route("GET", "/invoices/<int:invoice_id>", "billing")]

    assert _owner(routes, "GET", "/invoices/1/") is None


def test_a_literal_around_a_parameter_is_matched_literally() -> None:
    routes = [
        Route("GET", "/files/<name>", "documents"),
        Route("GET", "/files/<name>.pdf", "billing"),
    ]

    assert _owner(routes, "GET", "/files/invoice.pdf") == "billing"
    assert _owner(routes, "GET", "/files/invoice.txt") == "documents"


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        (Route("GET", "invoices", "billing"), "a rule starts with '/'"),
        (
            Route("GET", "/invoices/<money:amount>", "billing"),
            "converter 'money' is not one of float, int, path, string, uuid",
        ),
        (
            Route("GET", "/invoices/<int(min=1):invoice_id>", "billing"),
            "converter arguments (min=1) are not supported",
        ),
        (
            Route("GET", "/a/<x>/<x>", "billing"),
            "parameter 'x' appears twice",
        ),
        (
            Route("GET", "/invoices/<int:invoice_id>", "billing", "customer_id"),
            "bucket key 'customer_id' is not one of its parameters (invoice_id)",
        ),
        (
            Route("FETCH", "/invoices", "billing"),
            "method 'FETCH' is not one of",
        ),
    ],
)
def test_a_bad_route_is_refused_naming_the_rule(route: Route, problem: str) -> None:
    with pytest.raises(InvalidRule) as refused:
        check_route(route)

    assert f"route rule '{route.rule}': {problem}" in str(refused.value)
