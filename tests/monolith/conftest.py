from __future__ import annotations

from decimal import Decimal

import pytest
from flask.testing import FlaskClient

from migrate.schema import upgrade
from monolith.catalog.domain import Category, Product, Supplier
from monolith.catalog.handlers import add_to_catalog
from monolith.customers.domain import Customer
from monolith.customers.handlers import register_customers
from monolith.host import Monolith
from monolith.web import create_app


@pytest.fixture
def monolith(database_url: str) -> Monolith:
    upgrade(database_url)
    host = Monolith(database_url)
    add_to_catalog(
        host.unit_of_work("catalog"),
        [Category(1, "Beverages")],
        [Supplier(1, "Exotic Liquids")],
        [
            Product(1, "Chai", Decimal("18.00"), 1, 1),
            Product(2, "Chang", Decimal("19.00"), 1, 1),
        ],
    )
    register_customers(host.unit_of_work("customers"), [Customer("ALFKI", "Alfreds")])
    return host


@pytest.fixture
def client(monolith: Monolith) -> FlaskClient:
    return create_app(monolith).test_client()
