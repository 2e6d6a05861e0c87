"""The monolith's JSON API on a real database (SQLite file and PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa
from flask.testing import FlaskClient

from migrate.kernel.sql import FENCED, WRITER
from migrate.kernel.uow import set_role
from monolith.billing.tables import inbox as billing_inbox
from monolith.billing.tables import invoices
from monolith.host import Monolith
from monolith.ordering.tables import order_lines, orders
from monolith.ordering.tables import outbox as ordering_outbox
from monolith.shipping.domain import Shipper
from monolith.shipping.handlers import register_shippers
from monolith.shipping.tables import shipments

ORDER = {
    "customer_id": "ALFKI",
    "freight": "3.25",
    "lines": [{"product_id": 1, "quantity": 3, "discount": "0.15"}],
}


def test_placing_an_order_issues_its_invoice_through_order_placed(
    client: FlaskClient, monolith: Monolith
) -> None:
    placed = client.post("/orders", json=ORDER)

    order_id = placed.json["order_id"]
    invoice = client.get(f"/invoices/{order_id}").json
    assert placed.status_code == 201
    assert invoice["invoice_id"] == order_id
    assert invoice["total"] == "49.15"
    with monolith.engine.connect() as db:
        event_id = db.execute(
            sa.select(ordering_outbox.c.event_id).where(
                ordering_outbox.c.event_type == "OrderPlaced"
            )
        ).scalar_one()
        claimed = db.execute(sa.select(billing_inbox.c.event_id)).scalars().all()
    assert claimed == [event_id]


def test_an_order_for_an_unknown_product_is_422_and_changes_nothing(
    client: FlaskClient, monolith: Monolith
) -> None:
    client.post("/orders", json=ORDER)
    before = _counts(monolith)

    reply = client.post(
        "/orders", json={**ORDER, "lines": [{"product_id": 1, "quantity": 1},
                                            {"product_id": 99, "quantity": 1}]}
    )

    assert reply.status_code == 422
    assert reply.json["error"] == "unknown_product"
    assert "99" in reply.json["message"]
    assert _counts(monolith) == before
    # The first order's OrderPlaced, and the row images of the order and of
    # the order number it took.
    assert before == {"orders": 1, "order_lines": 1, "ordering_outbox": 3,
                      "invoices": 1, "shipments": 1}


def test_an_order_with_a_shipper_that_is_no_id_is_422_and_changes_nothing(
    client: FlaskClient, monolith: Monolith
) -> None:
    before = _counts(monolith)

    reply = client.post("/orders", json={**ORDER, "ship_via": "zz"})

    assert reply.status_code == 422
    assert reply.json["error"] == "invalid_request"
    assert "field 'ship_via' is 'zz'; it must be int" in reply.json["message"]
    assert client.post("/orders", json={**ORDER, "ship_via": 0}).status_code == 422
    assert _counts(monolith) == before


def test_an_order_with_a_shipper_shipping_does_not_know_is_422_and_changes_nothing(
    client: FlaskClient, monolith: Monolith
) -> None:
    register_shippers(monolith.unit_of_work("shipping"),
                      [Shipper(3, "Federal Shipping")])
    before = _counts(monolith)

    reply = client.post("/orders", json={**ORDER, "ship_via": 99})

    assert reply.status_code == 422
    assert reply.json == {"error": "unknown_shipper",
                          "message": "shipper 99 is not registered"}
    assert _counts(monolith) == before
    assert before == {"orders": 0, "order_lines": 0, "ordering_outbox": 0,
                      "invoices": 0, "shipments": 0}


def test_an_order_with_a_registered_shipper_is_placed_and_shipped_with_it(
    client: FlaskClient, monolith: Monolith
) -> None:
    register_shippers(monolith.unit_of_work("shipping"),
                      [Shipper(3, "Federal Shipping")])

    placed = client.post("/orders", json={**ORDER, "ship_via": 3})

    order_id = placed.json["order_id"]
    assert placed.status_code == 201
    assert placed.json["ship_via"] == 3
    assert client.get(f"/shipments/{order_id}").json["shipper_id"] == 3


def test_a_discount_that_is_no_finite_number_is_422_and_changes_nothing(
    client: FlaskClient, monolith: Monolith
) -> None:
    before = _counts(monolith)

    for written in ("Infinity", "sNaN", "NaN"):
        line = {"product_id": 1, "quantity": 1, "discount": written}
        reply = client.post("/orders", json={**ORDER, "lines": [line]})

        assert reply.status_code == 422, (written, reply.json)
        assert reply.json["error"] == "invalid_request"
        assert f"lines[0].discount is '{written}'" in reply.json["message"]
    assert _counts(monolith) == before


def test_a_payment_written_with_an_exponent_is_422_and_changes_nothing(
    client: FlaskClient, monolith: Monolith
) -> None:
    order_id = client.post("/orders", json=ORDER).json["order_id"]
    before = _counts(monolith)

    reply = client.post(f"/invoices/{order_id}/payments", json={"amount": "1e3"})

    assert reply.status_code == 422
    assert reply.json["error"] == "invalid_amount"
    assert "amount '1e3' is not a plain decimal number" in reply.json["message"]
    assert _counts(monolith) == before


def _counts(monolith: Monolith) -> dict[str, int]:
    tables = {"orders": orders, "order_lines": order_lines,
              "ordering_outbox": ordering_outbox, "invoices": invoices,
              "shipments": shipments}
    with monolith.engine.connect() as db:
        return {
            name: int(db.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                      or 0)
            for name, t in tables.items()
        }


def test_the_catalog_lists_every_product_with_its_price(client: FlaskClient) -> None:
    reply = client.get("/products")

    assert reply.status_code == 200
    assert [(p["product_id"], p["name"], p["unit_price"])
            for p in reply.json["products"]] == [(1, "Chai", "18.00"),
                                                 (2, "Chang", "19.00")]


def test_an_order_is_served_with_its_lines_and_total(client: FlaskClient) -> None:
    order_id = client.post("/orders", json=ORDER).json["order_id"]

    reply = client.get(f"/orders/{order_id}")
    missing = client.get(f"/orders/{order_id + 1}")

    assert reply.status_code == 200
    assert reply.json["order_id"] == order_id
    assert reply.json["customer_id"] == "ALFKI"
    assert reply.json["freight"] == "3.25"
    assert reply.json["total"] == "49.15"
    assert reply.json["lines"] == [{"product_id": 1, "unit_price": "18.00",
                                    "quantity": 3, "discount": "0.15",
                                    "amount": "45.90"}]
    assert (missing.status_code, missing.json["error"]) == (404, "order_not_found")


def test_a_malformed_order_names_the_field_and_the_rule(client: FlaskClient) -> None:
    reply = client.post(
        "/orders", json={"customer_id": "ALFKI", "lines": [{"quantity": 1}]}
    )

    assert reply.status_code == 422
    assert reply.json == {
        "error": "invalid_request",
        "message": "field 'product_id' is required",
    }


def test_a_payment_retried_with_its_idempotency_key_is_recorded_once(
    client: FlaskClient,
) -> None:
    order_id = client.post("/orders", json=ORDER).json["order_id"]
    headers = {"Idempotency-Key": "pay-once"}

    first = client.post(
        f"/invoices/{order_id}/payments", json={"amount": "10.00"}, headers=headers
    )
    again = client.post(
        f"/invoices/{order_id}/payments", json={"amount": "10.00"}, headers=headers
    )

    invoice = client.get(f"/invoices/{order_id}").json
    assert first.json["payment_id"] == again.json["payment_id"]
    assert invoice["paid"] == "10.00"
    assert invoice["balance"] == "39.15"


def test_a_fenced_monolith_refuses_billing_commands_and_leaves_invoices_to_the_writer(
    client: FlaskClient, monolith: Monolith
) -> None:
    with monolith.engine.begin() as db:
        set_role(db, "billing", FENCED)

    order_id = client.post("/orders", json=ORDER).json["order_id"]
    payment = client.post("/invoices/1/payments", json={"amount": "1.00"})

    assert payment.status_code == 503
    assert payment.json["error"] == "context_not_writer"
    assert payment.headers["X-Migrate-Not-Writer"] == "billing"
    assert client.get(f"/invoices/{order_id}").status_code == 404


def test_catch_up_delivers_what_a_fenced_consumer_missed_once_it_writes_again(
    client: FlaskClient, monolith: Monolith
) -> None:
    with monolith.engine.begin() as db:
        set_role(db, "billing", FENCED)
    order_id = client.post("/orders", json=ORDER).json["order_id"]
    with monolith.engine.begin() as db:
        set_role(db, "billing", WRITER)

    delivered = monolith.catch_up()

    assert delivered == 1
    assert client.get(f"/invoices/{order_id}").json["total"] == "49.15"
    assert monolith.catch_up() == 0
    with monolith.engine.connect() as db:
        assert (
            db.execute(sa.select(sa.func.count()).select_from(invoices)).scalar() == 1
        )


def test_customer_invoices_and_shipments_are_served(client: FlaskClient) -> None:
    order_id = client.post("/orders", json=ORDER).json["order_id"]

    listed = client.get("/customers/ALFKI/invoices").json
    shipment = client.get(f"/shipments/{order_id}").json

    assert [i["invoice_id"] for i in listed["invoices"]] == [order_id]
    assert shipment["status"] == "pending"
    assert client.get("/shipments/999").json["error"] == "shipment_not_found"


def test_an_order_of_too_many_lines_is_refused_before_anything_is_priced(
    client: FlaskClient,
) -> None:
    lines = [{"product_id": 1, "quantity": 1}] * 501

    reply = client.post("/orders", json={**ORDER, "lines": lines})

    assert reply.status_code == 422
    assert reply.json["error"] == "invalid_order"
    assert "at most 500" in reply.json["message"]


def test_a_quantity_beyond_the_limit_is_refused(client: FlaskClient) -> None:
    line = {"product_id": 1, "quantity": 9223372036854775807}

    reply = client.post("/orders", json={**ORDER, "lines": [line]})

    assert reply.status_code == 422
    assert "quantities run 1-1000000" in reply.json["message"]


def test_an_id_beyond_64_bits_is_not_found_in_json(client: FlaskClient) -> None:
    huge = client.get("/invoices/99999999999999999999999")
    nowhere = client.get("/nosuch")
    wrong_method = client.delete("/orders/1")

    assert (huge.status_code, huge.json["error"]) == (404, "not_found")
    assert (nowhere.status_code, nowhere.json["error"]) == (404, "not_found")
    assert wrong_method.json["error"] == "method_not_allowed"


def test_one_idempotency_key_on_two_invoices_is_two_payments(
    client: FlaskClient,
) -> None:
    first = client.post("/orders", json=ORDER).json["order_id"]
    second = client.post("/orders", json=ORDER).json["order_id"]
    key = {"Idempotency-Key": "same"}

    a = client.post(f"/invoices/{first}/payments", json={"amount": "1.00"}, headers=key)
    b = client.post(
        f"/invoices/{second}/payments", json={"amount": "1.00"}, headers=key
    )

    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json["payment_id"] != b.json["payment_id"]


def test_a_retried_payment_with_another_amount_is_refused(client: FlaskClient) -> None:
    order_id = client.post("/orders", json=ORDER).json["order_id"]
    key = {"Idempotency-Key": "k1"}
    client.post(f"/invoices/{order_id}/payments", json={"amount": "1.00"}, headers=key)

    again = client.post(
        f"/invoices/{order_id}/payments", json={"amount": "2.00"}, headers=key
    )

    assert again.status_code == 422
    assert "was 1.00, not 2.00" in again.json["message"]
