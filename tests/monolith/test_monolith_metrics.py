"""The monolith's `/metrics`: requests and latency per route, outbox backlog."""

from __future__ import annotations

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

ORDER = {
    "customer_id": "ALFKI",
    "freight": "3.25",
    "lines": [{"product_id": 1, "quantity": 3, "discount": "0.15"}],
}


def _samples(client: FlaskClient) -> dict[tuple[str, frozenset], float]:
    scraped = client.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.content_type.startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(scraped.get_data(as_text=True))
        for s in family.samples
    }


def test_each_answer_is_counted_by_context_route_and_status(
    client: FlaskClient,
) -> None:
    client.post("/orders", json=ORDER)
    client.post("/orders", json={**ORDER, "lines": [{"product_id": 99,
                                                     "quantity": 1}]})

    samples = _samples(client)

    def count(code: str) -> float:
        labels = {"context": "ordering", "route": "POST /orders", "code": code}
        return samples[("migrate_http_requests_total", frozenset(labels.items()))]

    assert (count("201"), count("422")) == (1, 1)
    assert samples[(
        "migrate_http_request_duration_seconds_count",
        frozenset({"context": "ordering", "route": "POST /orders"}.items()),
    )] == 2


def test_the_outbox_backlog_is_read_per_context_when_scraped(
    client: FlaskClient,
) -> None:
    before = _samples(client)
    client.post("/orders", json=ORDER)

    after = _samples(client)

    key = ("migrate_outbox_backlog_events",
           frozenset({"database": "monolith", "context": "ordering"}.items()))
    # Nothing relays in this test: the placed order's event stays unpublished,
    # with the row images of the order and of the order number it took.
    assert (before[key], after[key]) == (0, 3)
