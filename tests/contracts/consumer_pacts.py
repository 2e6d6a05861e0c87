"""What each consumer of the reference monolith relies on, as Pact contracts.

One builder per consumer-provider pair. The consumer tests run each
consumer's own code against these (`test_consumer_*`); `contracts/*.json`
is what the builders write, and a test keeps the two the same
(`MIGRATE_WRITE_CONTRACTS=1` rewrites the files instead).

Matchers say what a consumer needs, not what a sample returned: types for
ids and counts, regular expressions for money (two decimals), timestamps,
statuses and origins, `each_like` for lines. Message contracts pin the
envelope (the SQS body) and the attributes the consumer's queue filters on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from pact import Pact, match

MONEY = r"^-?\d+\.\d{2}$"
DISCOUNT = r"^0(\.\d{1,2})?$"
TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)?$"
STATUS = r"^(open|paid)$"
ORIGIN = r"^(monolith|service)$"
DIGITS = r"^\d+$"
WHEN = "2026-12-03T10:15:30.123456+00:00"
EXAMPLE_IDS = uuid.UUID("5e0a2b1c-9f4d-4c1e-8a6b-3d2f1e0c9b8a")
PAYMENT_ID = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"


def money(example: str) -> Any:
    return match.regex(example, regex=MONEY)


def timestamp() -> Any:
    return match.regex(WHEN, regex=TIMESTAMP)


def _new(consumer: str, provider: str) -> Pact:
    return Pact(consumer, provider).with_specification("V4")


# --- HTTP: ordering's ports, as calls of other contexts' APIs --------------

def ordering_catalog() -> Pact:
    pact = _new("ordering", "catalog")
    (pact.upon_receiving("a call for the price of a product")
     .given("a product is in the catalog", product_id=11, unit_price="14.00")
     .with_request("POST", "/_api/catalog/prices")
     .with_body({"product_ids": [11]}, content_type="application/json")
     .will_respond_with(200)
     .with_body({"result": {"11": money("14.00")}}, content_type="application/json"))
    (pact.upon_receiving("a call for the price of a product the catalog lacks")
     .given("no product has the id", product_id=99999)
     .with_request("POST", "/_api/catalog/prices")
     .with_body({"product_ids": [99999]}, content_type="application/json")
     .will_respond_with(200)
     .with_body({"result": {}}, content_type="application/json"))
    return pact


def ordering_customers() -> Pact:
    pact = _new("ordering", "customers")
    (pact.upon_receiving("a call asking whether a registered customer exists")
     .given("a customer is registered", customer_id="ALFKI")
     .with_request("POST", "/_api/customers/exists")
     .with_body({"customer_id": "ALFKI"}, content_type="application/json")
     .will_respond_with(200)
     .with_body({"result": True}, content_type="application/json"))
    (pact.upon_receiving("a call asking whether a customer nobody registered exists")
     .given("no customer has the id", customer_id="NOONE")
     .with_request("POST", "/_api/customers/exists")
     .with_body({"customer_id": "NOONE"}, content_type="application/json")
     .will_respond_with(200)
     .with_body({"result": False}, content_type="application/json"))
    return pact


def ordering_shipping() -> Pact:
    pact = _new("ordering", "shipping")
    (pact.upon_receiving("a call asking whether a registered shipper exists")
     .given("a shipper is registered", shipper_id=3)
     .with_request("POST", "/_api/shipping/shipper_exists")
     .with_body({"shipper_id": 3}, content_type="application/json")
     .will_respond_with(200)
     .with_body({"result": True}, content_type="application/json"))
    (pact.upon_receiving("a call asking whether a shipper nobody registered exists")
     .given("no shipper has the id", shipper_id=99)
     .with_request("POST", "/_api/shipping/shipper_exists")
     .with_body({"shipper_id": 99}, content_type="application/json")
     .will_respond_with(200)
     .with_body({"result": False}, content_type="application/json"))
    return pact


# --- HTTP: the routes the router forwards to billing -----------------------

def invoice_body(invoice_id: int, *, payments: Any = None) -> dict[str, Any]:
    return {
        "invoice_id": match.int(invoice_id),
        "order_id": match.int(invoice_id),
        "customer_id": match.str("VINET"),
        "issued_at": timestamp(),
        "status": match.regex("open", regex=STATUS),
        "freight": money("32.38"),
        "total": money("440.00"),
        "paid": money("0.00"),
        "balance": money("440.00"),
        "lines": match.each_like({
            "product_id": match.int(11),
            "unit_price": money("14.00"),
            "quantity": match.int(12),
            "discount": match.regex("0", regex=DISCOUNT),
            "amount": money("168.00"),
        }, min=1),
        "payments": payments if payments is not None else match.type([]),
    }


def router_billing() -> Pact:
    pact = _new("router", "billing")
    (pact.upon_receiving("a request for an invoice")
     .given("an invoice is open", invoice_id=10248, customer_id="VINET")
     .with_request("GET", "/invoices/10248")
     .will_respond_with(200)
     .with_body(invoice_body(10248), content_type="application/json"))
    (pact.upon_receiving("a request for an invoice that does not exist")
     .given("no invoice has the id", invoice_id=99999)
     .with_request("GET", "/invoices/99999")
     .will_respond_with(404)
     .with_body({"error": "invoice_not_found",
                 "message": match.str("no invoice 99999")},
                content_type="application/json"))
    (pact.upon_receiving("a request for a customer's invoices")
     .given("an invoice is open", invoice_id=10249, customer_id="TOMSP")
     .with_request("GET", "/customers/TOMSP/invoices")
     .will_respond_with(200)
     .with_body({"customer_id": "TOMSP",
                 "invoices": match.each_like(invoice_body(10249), min=1)},
                content_type="application/json"))
    (pact.upon_receiving("a payment on an invoice, sent to billing's writer")
     .given("an invoice is open", invoice_id=10250, customer_id="HANAR")
     .given("billing is written on this host")
     .with_request("POST", "/invoices/10250/payments")
     .with_header("Idempotency-Key", "payment-10250-1")
     .with_body({"amount": "10.00"}, content_type="application/json")
     .will_respond_with(201)
     .with_header("Location", match.regex("/invoices/10250", regex=r"^/invoices/\d+$"))
     .with_body({"payment_id": match.uuid(PAYMENT_ID), "invoice_id": match.int(10250),
                 "amount": money("10.00"), "received_at": timestamp()},
                content_type="application/json"))
    (pact.upon_receiving("a payment that reaches a host which does not write billing")
     .given("an invoice is open", invoice_id=10251, customer_id="VICTE")
     .given("billing is written on another host")
     .with_request("POST", "/invoices/10251/payments")
     .with_header("Idempotency-Key", "payment-10251-1")
     .with_body({"amount": "10.00"}, content_type="application/json")
     .will_respond_with(503)
     .with_header("X-Migrate-Not-Writer", "billing")
     .with_header("Retry-After", match.regex("1", regex=DIGITS))
     .with_body({"error": "context_not_writer", "message": match.str("not the writer")},
                content_type="application/json"))
    return pact


# --- HTTP: the routes the router forwards to the other contexts -----------

def _not_found(pact: Pact, what: str, path: str, state: str, error: str,
               **params: Any) -> None:
    """A read of something that does not exist (`what`, such as "an order"):
    the router relays the host's 404 and its error code as they are."""
    (pact.upon_receiving(f"a request for {what} that does not exist")
     .given(state, **params)
     .with_request("GET", path)
     .will_respond_with(404)
     .with_body({"error": error, "message": match.str(f"no {what.split()[-1]} 99999")},
                content_type="application/json"))


def product_body(product_id: int) -> dict[str, Any]:
    return {
        "product_id": match.int(product_id),
        "name": match.str("Queso Cabrales"),
        "unit_price": money("14.00"),
        "units_in_stock": match.int(22),
        "discontinued": match.bool(False),
    }


def router_catalog() -> Pact:
    pact = _new("router", "catalog")
    (pact.upon_receiving("a request for the products")
     .given("a product is in the catalog", product_id=11, unit_price="14.00")
     .with_request("GET", "/products")
     .will_respond_with(200)
     .with_body({"products": match.each_like(product_body(11), min=1)},
                content_type="application/json"))
    (pact.upon_receiving("a request for a product")
     .given("a product is in the catalog", product_id=42, unit_price="9.80",
            name="Singaporean Hokkien Fried Mee")
     .with_request("GET", "/products/42")
     .will_respond_with(200)
     .with_body(product_body(42), content_type="application/json"))
    _not_found(pact, "a product", "/products/99999", "no product has the id",
               "product_not_found", product_id=99999)
    return pact


def router_customers() -> Pact:
    pact = _new("router", "customers")
    (pact.upon_receiving("a request for a customer")
     .given("a customer is registered", customer_id="ALFKI")
     .with_request("GET", "/customers/ALFKI")
     .will_respond_with(200)
     .with_body({"customer_id": "ALFKI",
                 "company_name": match.str("Alfreds Futterkiste")},
                content_type="application/json"))
    _not_found(pact, "a customer", "/customers/NOONE", "no customer has the id",
               "customer_not_found", customer_id="NOONE")
    return pact


SHIP_TO = {"name": "Vins et alcools Chevalier", "city": "Reims", "country": "France"}


def new_order(quantity: int) -> dict[str, Any]:
    """What a client sends to place an order: the customer, the product and
    the shipper that ordering's own contracts with customers, catalog and
    shipping say exist. The quantity tells one interaction's request from
    another's."""
    return {
        "customer_id": "ALFKI",
        "lines": [{"product_id": 11, "quantity": quantity, "discount": "0.15"}],
        "freight": "32.38",
        "ship_via": 3,
        "ship_to": SHIP_TO,
    }


def order_body(order_id: int, customer_id: str) -> dict[str, Any]:
    return {
        "order_id": match.int(order_id),
        "customer_id": match.str(customer_id),
        "ordered_at": timestamp(),
        "ship_via": match.int(3),
        "ship_to": match.like(SHIP_TO),
        "freight": money("32.38"),
        "total": money("175.18"),
        "lines": match.each_like({
            "product_id": match.int(11),
            "unit_price": money("14.00"),
            "quantity": match.int(12),
            "discount": match.regex("0.15", regex=DISCOUNT),
            "amount": money("142.80"),
        }, min=1),
    }


def router_ordering() -> Pact:
    pact = _new("router", "ordering")
    (pact.upon_receiving("a request for an order")
     .given("an order was taken", order_id=10280, customer_id="VINET")
     .with_request("GET", "/orders/10280")
     .will_respond_with(200)
     .with_body(order_body(10280, "VINET"), content_type="application/json"))
    _not_found(pact, "an order", "/orders/99999", "no order has the id",
               "order_not_found", order_id=99999)
    (pact.upon_receiving("an order, sent to ordering's writer")
     .given("the customer, the product and the shipper of an order exist",
            customer_id="ALFKI", product_id=11, unit_price="14.00", shipper_id=3)
     .given("ordering is written on this host")
     .with_request("POST", "/orders")
     .with_body(new_order(12), content_type="application/json")
     .will_respond_with(201)
     .with_header("Location", match.regex("/orders/10281", regex=r"^/orders/\d+$"))
     .with_body(order_body(10281, "ALFKI"), content_type="application/json"))
    (pact.upon_receiving("an order that reaches a host which does not write ordering")
     .given("the customer, the product and the shipper of an order exist",
            customer_id="ALFKI", product_id=11, unit_price="14.00", shipper_id=3)
     .given("ordering is written on another host")
     .with_request("POST", "/orders")
     .with_body(new_order(1), content_type="application/json")
     .will_respond_with(503)
     .with_header("X-Migrate-Not-Writer", "ordering")
     .with_header("Retry-After", match.regex("1", regex=DIGITS))
     .with_body({"error": "context_not_writer", "message": match.str("not the writer")},
                content_type="application/json"))
    return pact


def router_shipping() -> Pact:
    pact = _new("router", "shipping")
    (pact.upon_receiving("a request for an order's shipment")
     .given("an order's shipment was dispatched", order_id=10290, shipper_id=3)
     .with_request("GET", "/shipments/10290")
     .will_respond_with(200)
     .with_body({"order_id": match.int(10290),
                 "shipper_id": match.int(3),
                 "status": match.regex("shipped", regex=r"^(pending|shipped)$"),
                 "shipped_at": timestamp(),
                 "ship_to": match.like({"city": "Reims"})},
                content_type="application/json"))
    _not_found(pact, "a shipment", "/shipments/99999", "no shipment has the id",
               "shipment_not_found", order_id=99999)
    return pact


# --- Messages: envelopes and their attributes ------------------------------

def envelope(event_type: str, context: str, aggregate_id: str,
             data: dict[str, Any]) -> dict[str, Any]:
    """The SQS body a consumer receives: the event's envelope. Each example
    has an event id of its own, as every event has."""
    example_id = uuid.uuid5(EXAMPLE_IDS, f"{event_type} {aggregate_id}")
    return {
        "event_id": match.uuid(str(example_id)),
        "event_type": event_type,
        "context": context,
        "aggregate_id": match.regex(aggregate_id, regex=DIGITS),
        "schema_version": 1,
        "origin": match.regex("monolith", regex=ORIGIN),
        "occurred_at": timestamp(),
        "data": data,
    }


def pinned(event_type: str, *, origin: bool = False) -> dict[str, Any]:
    """The attributes a consumer relies on; `origin` for the sync queues,
    whose filter policies route by it."""
    attributes: dict[str, Any] = {"event_type": event_type, "schema_version": "1"}
    if origin:
        attributes["origin"] = match.regex("monolith", regex=ORIGIN)
    return attributes


def order_placed(order_id: int) -> dict[str, Any]:
    return envelope("OrderPlaced", "ordering", str(order_id), {
        "order_id": match.int(order_id),
        "customer_id": match.str("VINET"),
        "ordered_at": timestamp(),
        "freight": money("32.38"),
        "ship_via": match.int(3),
        "ship_to": match.like({"name": "Vins et alcools Chevalier", "city": "Reims",
                               "country": "France"}),
        "lines": match.each_like({
            "product_id": match.int(11),
            "unit_price": money("14.00"),
            "quantity": match.int(12),
            "discount": match.regex("0.15", regex=DISCOUNT),
        }, min=1),
    })


def _order_placed_pact(consumer: str) -> Pact:
    pact = _new(consumer, "ordering")
    (pact.upon_receiving("an OrderPlaced event", "Async")
     .given("an order was placed", customer_id="VINET", product_id=11, quantity=12)
     .with_body(order_placed(1), content_type="application/json")
     .with_metadata(pinned("OrderPlaced")))
    return pact


def billing_ordering() -> Pact:
    return _order_placed_pact("billing")


def shipping_ordering() -> Pact:
    return _order_placed_pact("shipping")


def invoice_state(invoice_id: int, *, paid: bool = False) -> dict[str, Any]:
    """An invoice's whole state as billing's events carry it."""
    payments = match.each_like({
        "payment_id": match.uuid(PAYMENT_ID),
        "amount": money("25.00"),
        "received_at": timestamp(),
    }, min=1) if paid else match.type([])
    return {
        "invoice_id": match.int(invoice_id),
        "customer_id": match.str("VINET"),
        "issued_at": timestamp(),
        "freight": money("32.38"),
        "total": money("440.00"),
        "paid": money("25.00" if paid else "0.00"),
        "status": match.regex("open", regex=STATUS),
        "version": match.int(2 if paid else 1),
        "lines": match.each_like({
            "product_id": match.int(11),
            "unit_price": money("14.00"),
            "quantity": match.int(12),
            "discount": match.regex("0", regex=DISCOUNT),
            "amount": money("168.00"),
        }, min=1),
        "payments": payments,
    }


def billing_invoice_email() -> Pact:
    pact = _new("billing-invoice-email", "billing")
    (pact.upon_receiving("an InvoiceIssued event", "Async")
     .given("an order was placed", order_id=10260, customer_id="VINET")
     .with_body(envelope("InvoiceIssued", "billing", "10260",
                         {"invoice": invoice_state(10260)}),
                content_type="application/json")
     .with_metadata(pinned("InvoiceIssued")))
    return pact


def billing_invoice_pdf() -> Pact:
    pact = _new("billing-invoice-pdf", "billing")
    (pact.upon_receiving("an InvoiceIssued event", "Async")
     .given("an order was placed", order_id=10262, customer_id="VINET")
     .with_body(envelope("InvoiceIssued", "billing", "10262",
                         {"invoice": invoice_state(10262)}),
                content_type="application/json")
     .with_metadata(pinned("InvoiceIssued")))
    return pact


def payment_received(invoice_id: int) -> dict[str, Any]:
    return envelope("PaymentReceived", "billing", str(invoice_id), {
        "payment_id": match.uuid(PAYMENT_ID),
        "amount": money("25.00"),
        "invoice": invoice_state(invoice_id, paid=True),
    })


def billing_payment_reminder() -> Pact:
    pact = _new("billing-payment-reminder", "billing")
    (pact.upon_receiving("a PaymentReceived event that leaves a balance", "Async")
     .given("a payment was received", invoice_id=10264, amount="25.00")
     .with_body(payment_received(10264), content_type="application/json")
     .with_metadata(pinned("PaymentReceived")))
    return pact


def shipping_shipment_notification() -> Pact:
    pact = _new("shipping-shipment-notification", "shipping")
    (pact.upon_receiving("a ShipmentDispatched event", "Async")
     .given("a shipment was dispatched", customer_id="VINET", shipper_id=3)
     .with_body(envelope("ShipmentDispatched", "shipping", "1", {
         "order_id": match.int(1),
         "shipper_id": match.int(3),
         "shipped_at": timestamp(),
     }), content_type="application/json")
     .with_metadata(pinned("ShipmentDispatched")))
    return pact


def billing_replica() -> Pact:
    pact = _new("billing-replica", "billing")
    (pact.upon_receiving("an InvoiceIssued event", "Async")
     .given("an order was placed", order_id=10270, customer_id="VINET")
     .with_body(envelope("InvoiceIssued", "billing", "10270",
                         {"invoice": invoice_state(10270)}),
                content_type="application/json")
     .with_metadata(pinned("InvoiceIssued", origin=True)))
    (pact.upon_receiving("a PaymentReceived event", "Async")
     .given("a payment was received", invoice_id=10271, amount="25.00")
     .with_body(payment_received(10271), content_type="application/json")
     .with_metadata(pinned("PaymentReceived", origin=True)))
    return pact


BUILDERS: dict[str, Callable[[], Pact]] = {
    "ordering-catalog": ordering_catalog,
    "ordering-customers": ordering_customers,
    "ordering-shipping": ordering_shipping,
    "router-billing": router_billing,
    "router-catalog": router_catalog,
    "router-customers": router_customers,
    "router-ordering": router_ordering,
    "router-shipping": router_shipping,
    "billing-ordering": billing_ordering,
    "shipping-ordering": shipping_ordering,
    "billing-invoice-email-billing": billing_invoice_email,
    "billing-invoice-pdf-billing": billing_invoice_pdf,
    "billing-payment-reminder-billing": billing_payment_reminder,
    "billing-replica-billing": billing_replica,
    "shipping-shipment-notification-shipping": shipping_shipment_notification,
}
