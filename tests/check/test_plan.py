"""`migrate plan <context>` says what extracting it will cut, and what blocks it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from planting import MonolithCopy, migrate_cli

from migrate.schema import upgrade
from monolith.catalog.domain import Category, Product, Supplier
from monolith.catalog.handlers import add_to_catalog
from monolith.customers.domain import Customer
from monolith.customers.handlers import register_customers
from monolith.host import Monolith
from monolith.web import create_app


def _one_invoiced_order(url: str) -> None:
    upgrade(url)
    host = Monolith(url)
    add_to_catalog(host.unit_of_work("catalog"), [Category(1, "Beverages")],
                   [Supplier(1, "Exotic Liquids")],
                   [Product(1, "Chai", Decimal("18.00"), 1, 1)])
    register_customers(host.unit_of_work("customers"), [Customer("ALFKI", "Alfreds")])
    create_app(host).test_client().post("/orders", json={
        "customer_id": "ALFKI", "lines": [{"product_id": 1, "quantity": 2}]})


def test_the_plan_for_billing_lists_its_routes_events_tables_and_side_effects(
    sqlite_url: str,
) -> None:
    _one_invoiced_order(sqlite_url)

    done = migrate_cli("plan", "billing", "--json", "--database", sqlite_url)

    plan = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert plan["ready"] is True
    assert {"method": "GET", "rule": "/invoices/<int:invoice_id>",
            "endpoint": "get_invoice"} in plan["routes"]
    assert plan["consumed"] == [
        {"event": "OrderPlaced", "from": "ordering", "handler": "issue_invoice"}]
    assert {e["event"] for e in plan["published"]} == {"InvoiceIssued",
                                                       "PaymentReceived"}
    assert {"table": "invoices", "rows": 1} in plan["tables"]
    assert {"table": "billing_inbox", "rows": 1} in plan["tables"]
    assert plan["side_effects"][0]["name"] == "invoice_email"


def test_the_plan_names_who_calls_the_contexts_api_and_who_consumes_its_events(
) -> None:
    catalog = json.loads(migrate_cli("plan", "catalog", "--json").stdout)
    ordering = json.loads(migrate_cli("plan", "ordering", "--json").stdout)
    shipping = json.loads(migrate_cli("plan", "shipping", "--json").stdout)

    assert [(c["importer"], c["imported"]) for c in catalog["inbound"]] == [
        ("monolith.ordering.ports.Ports.catalog", "catalog.prices")]
    assert [(c["importer"], c["imported"]) for c in shipping["inbound"]] == [
        ("monolith.ordering.ports.Ports.shipping", "shipping.shipper_exists")]
    [placed] = ordering["published"]
    assert placed["consumers"] == ["billing.issue_invoice", "shipping.plan_shipment"]


def test_the_plan_counts_calls_through_ports_the_host_wires_as_calls_out() -> None:
    done = migrate_cli("plan", "ordering")

    plan = json.loads(migrate_cli("plan", "ordering", "--json").stdout)
    assert [(c["kind"], c["to"], c["imported"], c["location"])
            for c in plan["outbound"]] == [
        ("port", "catalog", "catalog.prices", "monolith/ordering/ports.py:55"),
        ("port", "customers", "customers.exists", "monolith/ordering/ports.py:56"),
        ("port", "shipping", "shipping.shipper_exists",
         "monolith/ordering/ports.py:57"),
    ]
    assert "ordering's catalog port -> catalog.prices" in done.stdout
    assert "ordering's shipping port -> shipping.shipper_exists" in done.stdout
    assert plan["ports"] == ["Catalog", "Customers", "Orders", "Shipping"]


def test_a_new_port_named_after_a_context_shows_as_a_call_in_both_plans(
    monolith_copy: MonolithCopy,
) -> None:
    monolith_copy.replace("shipping/ports.py", "class Ports(Protocol):\n",
                          "class Customers(Protocol):\n"
                          "    def address_of(self, customer_id: str) -> str: ...\n"
                          "\n\nclass Ports(Protocol):\n    customers: Customers\n")
    manifest = ("--manifest", str(monolith_copy.manifest), "--json")

    shipping = json.loads(migrate_cli("plan", "shipping", *manifest).stdout)
    customers = json.loads(migrate_cli("plan", "customers", *manifest).stdout)

    [out] = [c for c in shipping["outbound"] if c["kind"] == "port"]
    assert (out["from"], out["port"], out["imported"]) == (
        "shipping", "customers", "customers.address_of")
    assert out in customers["inbound"]


def test_violations_that_touch_the_context_block_its_plan(
    monolith_copy: MonolithCopy,
) -> None:
    line = monolith_copy.append("billing/handlers.py",
                                "from monolith.ordering.adapters import SqlOrders")

    done = migrate_cli("plan", "ordering", "--manifest", str(monolith_copy.manifest))

    assert done.returncode == 1
    assert "Blocked by 1 violations:" in done.stdout
    assert f"monolith/billing/handlers.py:{line}" in done.stdout


def test_the_plan_creates_no_database_to_count_rows(tmp_path: Path) -> None:
    missing = tmp_path / "none.db"

    done = migrate_cli("plan", "customers", "--database", f"sqlite:///{missing}")

    assert done.returncode == 0
    assert f"there is no database at {missing}" in done.stdout
    assert not missing.exists()
