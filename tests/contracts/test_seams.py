"""The seam finder: every place one part relies on another across a context's
edge, read from the manifest and the code, and which of them lack a contract."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from contract_helpers import copy_of_code

from migrate.contracts.seams import seams, uncovered
from migrate.contracts.verify import load_contracts
from migrate.manifest import load

PORTS = "monolith/shipping/ports.py"
HANDLERS = "monolith/shipping/handlers.py"
ROUTES = "monolith/shipping/routes.py"


def test_the_seams_of_the_reference_monolith_are_the_known_ones() -> None:
    found = [(s.consumer, s.provider, s.kind, s.what) for s in seams(load())]

    assert found == [
        ("billing-invoice-email", "billing", "message", "InvoiceIssued"),
        ("billing-invoice-pdf", "billing", "message", "InvoiceIssued"),
        ("billing-payment-reminder", "billing", "message", "PaymentReceived"),
        ("billing-replica", "billing", "message", "InvoiceIssued"),
        ("billing-replica", "billing", "message", "PaymentReceived"),
        ("router", "billing", "http", "GET /customers/<customer_id>/invoices"),
        ("router", "billing", "http", "GET /invoices/<int:invoice_id>"),
        ("router", "billing", "http", "POST /invoices/<int:invoice_id>/payments"),
        ("ordering", "catalog", "http", "ordering's catalog port"),
        ("router", "catalog", "http", "GET /products"),
        ("router", "catalog", "http", "GET /products/<int:product_id>"),
        ("ordering", "customers", "http", "ordering's customers port"),
        ("router", "customers", "http", "GET /customers/<customer_id>"),
        ("billing", "ordering", "message", "OrderPlaced"),
        ("router", "ordering", "http", "GET /orders/<int:order_id>"),
        ("router", "ordering", "http", "POST /orders"),
        ("shipping", "ordering", "message", "OrderPlaced"),
        ("ordering", "shipping", "http", "ordering's shipping port"),
        ("router", "shipping", "http", "GET /shipments/<int:order_id>"),
        ("shipping-shipment-notification", "shipping", "message",
         "ShipmentDispatched"),
    ]


def test_a_seam_whose_contract_is_gone_is_uncovered() -> None:
    contracts = [c for c in load_contracts() if c.path.name != "ordering-catalog.json"]

    missing = uncovered(load(), contracts)

    assert [seam.text() for seam in missing] == [
        "ordering -> catalog: ordering's catalog port"]


def test_a_route_no_interaction_of_the_routers_contract_matches_is_uncovered(
) -> None:
    contracts = load_contracts()
    [router] = [c for c in contracts
                if (c.consumer, c.provider) == ("router", "billing")]
    kept = [i for i in router.interactions
            if not i.request.get("path", "").endswith("/payments")]
    trimmed = [c for c in contracts if c is not router]
    trimmed.append(dataclasses.replace(router, interactions=tuple(kept)))

    missing = uncovered(load(), trimmed)

    assert [seam.text() for seam in missing] == [
        "router -> billing: POST /invoices/<int:invoice_id>/payments"]


def test_the_routes_of_a_context_followed_through_row_images_are_seams() -> None:
    contracts = [c for c in load_contracts() if c.path.name != "router-ordering.json"]

    missing = uncovered(load(), contracts)

    assert [seam.text() for seam in missing] == [
        "router -> ordering: GET /orders/<int:order_id>",
        "router -> ordering: POST /orders",
    ]


def _in_copy(root: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The `migrate` command run on the copied code, as its user would."""
    env = {**os.environ, "PYTHONPATH": str(root), "MIGRATE_HOME": str(home),
           "MIGRATE_EXTRACTED": str(home / "extracted")}
    return subprocess.run([sys.executable, "-m", "migrate.cli", *args], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def test_a_new_port_and_a_new_event_handler_are_seams_that_stop_deploys(
    tmp_path: Path,
) -> None:
    root = copy_of_code(tmp_path / "code", {
        PORTS: ("class Ports(Protocol):\n",
                "class Customers(Protocol):\n"
                "    def address_of(self, customer_id: str) -> str: ...\n\n\n"
                "class Ports(Protocol):\n    customers: Customers\n"),
        HANDLERS: ("EVENT_HANDLERS = {\n",
                   "def note_invoice(issued: InvoiceIssued, uow: UnitOfWork) -> None:\n"
                   "    with uow:\n        uow.commit()\n\n\n"
                   "EVENT_HANDLERS = {\n    InvoiceIssued: note_invoice,\n"),
    })
    handlers = root / HANDLERS
    handlers.write_text(handlers.read_text().replace(
        "from monolith.ordering.events import OrderPlaced\n",
        "from monolith.billing.events import InvoiceIssued\n"
        "from monolith.ordering.events import OrderPlaced\n"))
    home = tmp_path / "var"
    # Everything shipping's deploy depends on is verified, so only the seams
    # can say no.
    verified = _in_copy(root, home, "contracts", "verify", "--provider", "shipping",
                        "--provider", "ordering")

    done = _in_copy(root, home, "can-i-deploy", "shipping", "--json")

    assert verified.returncode == 0, verified.stdout + verified.stderr
    answer = json.loads(done.stdout)
    assert done.returncode == 1
    assert answer["deployable"] is False
    assert answer["reasons"] == [
        "no contract covers the seam shipping -> billing: InvoiceIssued",
        "no contract covers the seam shipping -> customers: shipping's customers "
        "port",
    ]


def test_a_new_route_is_a_seam_that_stops_deploys(tmp_path: Path) -> None:
    root = copy_of_code(tmp_path / "code", {ROUTES: (
        "ROUTES = [\n",
        "def list_shippers(ports: Ports, request: Request) -> Reply:\n"
        '    return Reply(200, {"shippers": []})\n\n\n'
        'ROUTES = [\n    Route("GET", "/shippers", list_shippers),\n'),
    })

    done = _in_copy(root, tmp_path / "var", "can-i-deploy", "shipping", "--json")

    answer = json.loads(done.stdout)
    assert done.returncode == 1
    assert ("no contract covers the seam router -> shipping: GET /shippers"
            in answer["reasons"])
    assert [r for r in answer["reasons"] if r.startswith("no contract")] == [
        "no contract covers the seam router -> shipping: GET /shippers"]
