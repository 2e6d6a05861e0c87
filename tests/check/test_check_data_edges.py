"""Tables belong to exactly one context; nothing in the metadata joins two."""

from __future__ import annotations

from planting import MonolithCopy


def test_a_foreign_key_to_another_contexts_table_is_reported(
    monolith_copy: MonolithCopy,
) -> None:
    line = monolith_copy.replace(
        "billing/tables.py",
        'sa.Column("product_id", sa.Integer, nullable=False)',
        'sa.Column("product_id", sa.Integer,\n'
        '              sa.ForeignKey("products.product_id"), nullable=False)',
    )

    checked = monolith_copy.check()

    assert checked.exit_code == 1
    [found] = checked.found("cross-context-foreign-key")
    assert found["location"] == f"monolith/billing/tables.py:{line + 1}"
    assert found["context"] == "billing"
    assert found["other"] == "catalog"
    assert found["subject"] == "invoice_lines.product_id -> products.product_id"


def test_an_orm_relationship_across_contexts_is_reported(
    monolith_copy: MonolithCopy,
) -> None:
    start = monolith_copy.append("billing/tables.py", "\n".join([
        "from sqlalchemy import orm",
        "from monolith.ordering.tables import orders",
        "_mapped = orm.registry()",
        "class _Order:",
        "    pass",
        "class _Invoice:",
        "    pass",
        "_mapped.map_imperatively(_Order, orders)",
        "_mapped.map_imperatively(_Invoice, invoices, properties={",
        "    'order': orm.relationship(",
        "        _Order, viewonly=True,",
        "        primaryjoin=orders.c.order_id == orm.foreign(invoices.c.invoice_id)),",
        "})",
    ]))

    checked = monolith_copy.check()

    [found] = checked.found("cross-context-relationship")
    assert found["location"] == f"monolith/billing/tables.py:{start + 9}"
    assert found["subject"] == "monolith.billing.tables._Invoice.order -> orders"
    assert found["other"] == "ordering"


def test_a_table_no_context_claims_is_reported(monolith_copy: MonolithCopy) -> None:
    line = monolith_copy.append(
        "shipping/tables.py",
        'routes = sa.Table("delivery_routes", metadata, '
        'sa.Column("route_id", sa.Integer, primary_key=True))',
    )

    checked = monolith_copy.check()

    [found] = checked.found("unclaimed-table")
    assert found["location"] == f"monolith/shipping/tables.py:{line}"
    assert found["subject"] == "delivery_routes"


def test_a_table_defined_by_one_context_and_claimed_by_another_is_reported(
    monolith_copy: MonolithCopy,
) -> None:
    monolith_copy.append(
        "shipping/tables.py",
        'customers = sa.Table("customers", metadata, '
        'sa.Column("customer_id", sa.String(5), primary_key=True))',
    )

    checked = monolith_copy.check()

    [found] = checked.found("table-owner")
    assert found["context"] == "shipping"
    assert "customers claims it" in found["message"]


def test_a_claimed_table_that_no_metadata_defines_is_reported(
    monolith_copy: MonolithCopy,
) -> None:
    monolith_copy.replace("contexts.toml", '"shippers", ', '"shippers", "parcels", ')

    checked = monolith_copy.check()

    [found] = checked.found("missing-table")
    assert found["subject"] == "parcels"
    assert found["context"] == "shipping"
