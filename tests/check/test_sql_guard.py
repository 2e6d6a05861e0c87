"""The SQL guard reports statements that cross contexts, at run time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from planting import PROJECT, MonolithCopy

from migrate.check.sqlguard import ENVIRONMENT, SqlGuard
from migrate.manifest import load
from migrate.schema import upgrade
from monolith.catalog.domain import Category, Product, Supplier
from monolith.catalog.handlers import add_to_catalog
from monolith.customers.domain import Customer
from monolith.customers.handlers import register_customers
from monolith.host import Monolith
from monolith.web import create_app

JOIN = ("SELECT invoices.invoice_id FROM invoices "
        "JOIN orders ON orders.order_id = invoices.invoice_id")

# Run from the copy's root, so its planted code is what gets imported.
DRIVER = textwrap.dedent("""\
    import sys

    from monolith.billing.tables import metadata as billing
    from monolith.host import Monolith
    from monolith.ordering.tables import metadata as ordering
    from monolith.{context}.adapters import {function}

    host = Monolith(sys.argv[1])
    billing.create_all(host.engine)
    ordering.create_all(host.engine)
    with host.engine.connect() as db:
        {function}(db)
    """)


def _plant(copy: MonolithCopy, context: str, function: str, sql: str) -> int:
    line = copy.append(f"{context}/adapters.py", "\n".join([
        f"def {function}(db):",
        f"    return db.execute(sa.text({sql!r})).all()",
    ]))
    copy.root.joinpath("driver.py").write_text(
        DRIVER.format(context=context, function=function))
    return line + 1


def _drive(copy: MonolithCopy, mode: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, ENVIRONMENT: mode,
           "MIGRATE_SQL_GUARD_REPORT": str(copy.root / "guard.jsonl")}
    return subprocess.run(
        [sys.executable, "driver.py", f"sqlite:///{copy.root / 'monolith.db'}"],
        cwd=copy.root, env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )


def _reported(copy: MonolithCopy) -> list[dict[str, str]]:
    lines = (copy.root / "guard.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_a_raw_sql_join_across_two_contexts_is_reported_with_statement_and_caller(
    monolith_copy: MonolithCopy,
) -> None:
    line = _plant(monolith_copy, "billing", "invoiced_orders", JOIN)

    done = _drive(monolith_copy, "warn")

    assert done.returncode == 0, done.stderr
    [found] = _reported(monolith_copy)
    assert found["rule"] == "sql-cross-context"
    assert found["location"] == str(
        monolith_copy.path("billing/adapters.py").resolve()) + f":{line}"
    assert JOIN in found["message"]
    assert "invoices (billing), orders (ordering)" in found["message"]


def test_the_guard_asked_to_raise_refuses_the_statement(
    monolith_copy: MonolithCopy,
) -> None:
    _plant(monolith_copy, "billing", "invoiced_orders", JOIN)

    done = _drive(monolith_copy, "raise")

    assert done.returncode == 1
    assert "CrossContextStatement: sql-cross-context" in done.stderr


def test_a_contexts_code_reading_another_contexts_table_is_reported(
    monolith_copy: MonolithCopy,
) -> None:
    line = _plant(monolith_copy, "shipping", "invoice_count",
                  "SELECT count(*) FROM invoices")

    _drive(monolith_copy, "warn")

    [found] = _reported(monolith_copy)
    assert found["rule"] == "sql-foreign-table"
    assert found["context"] == "shipping"
    assert found["other"] == "billing"
    assert found["location"].endswith(f"shipping/adapters.py:{line}")


def test_a_statement_the_parser_cannot_read_is_reported() -> None:
    guard = SqlGuard(load())

    [found] = guard.judge("SELEC invoice_id FRM invoices", "sqlite")

    assert found.rule == "sql-unreadable"
    assert "SELEC invoice_id FRM invoices" in found.message


def test_the_guard_is_off_unless_the_environment_asks(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENVIRONMENT, raising=False)

    assert Monolith(sqlite_url).sql_guard is None


def test_the_reference_monolith_runs_its_story_under_the_raising_guard(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENVIRONMENT, "raise")
    upgrade(sqlite_url)
    host = Monolith(sqlite_url)
    add_to_catalog(host.unit_of_work("catalog"), [Category(1, "Beverages")],
                   [Supplier(1, "Exotic Liquids")],
                   [Product(1, "Chai", Decimal("18.00"), 1, 1)])
    register_customers(host.unit_of_work("customers"), [Customer("ALFKI", "Alfreds")])
    client = create_app(host).test_client()

    placed = client.post("/orders", json={
        "customer_id": "ALFKI", "lines": [{"product_id": 1, "quantity": 2}]})
    order_id = placed.json["order_id"]
    paid = client.post(f"/invoices/{order_id}/payments", json={"amount": "1.00"})
    host.catch_up()

    assert (placed.status_code, paid.status_code) == (201, 201)
    assert host.sql_guard is not None
    assert host.sql_guard.take() == []


PLUGIN_TEST = textwrap.dedent("""\
    import sqlalchemy as sa

    def test_joins_two_contexts(tmp_path):
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
        with engine.connect() as db:
            db.exec_driver_sql("CREATE TABLE orders (order_id INTEGER)")
            db.exec_driver_sql("CREATE TABLE invoices (invoice_id INTEGER)")
            db.exec_driver_sql(%r)

    def test_stays_in_billing(tmp_path):
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
        with engine.connect() as db:
            db.exec_driver_sql("CREATE TABLE invoices (invoice_id INTEGER)")
            db.exec_driver_sql("SELECT invoice_id FROM invoices")
    """) % JOIN


def test_the_pytest_plugin_fails_a_test_that_joins_two_contexts(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_planted.py").write_text(PLUGIN_TEST)

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "migrate.check.pytest_plugin",
         "--sql-guard", "-p", "no:pytest_nameko", "-p", "no:cacheprovider",
         "test_planted.py", "-q"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )

    assert done.returncode == 1, done.stdout
    assert "1 failed, 1 passed" in done.stdout
    assert "FAILED test_planted.py::test_joins_two_contexts" in done.stdout
    assert "sql-cross-context" in done.stdout
