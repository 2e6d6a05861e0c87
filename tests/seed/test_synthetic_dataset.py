"""The synthetic data set: its size, its shape, and that it never varies."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from migrate.seed.errors import SeedError, SizeError
from migrate.seed.synthetic import generate

REPO = Path(__file__).resolve().parents[2]

DIGEST = (
    "import hashlib; from migrate.seed.synthetic import generate; "
    "print(hashlib.sha256(repr(generate(300, seed=11)).encode()).hexdigest())"
)


def test_it_has_exactly_the_orders_asked_for() -> None:
    dataset = generate(250)

    assert len(dataset.orders) == 250
    assert [order.order_id for order in dataset.orders] == list(range(1, 251))


def test_the_same_size_and_seed_give_the_same_data_set() -> None:
    assert generate(500, seed=3) == generate(500, seed=3)


def test_another_seed_gives_another_data_set() -> None:
    assert generate(50, seed=1).orders != generate(50, seed=2).orders


def test_it_is_the_same_in_processes_with_other_hash_seeds() -> None:
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [sys.executable, "-c", DIGEST],
            env=env, capture_output=True, text=True, check=True, timeout=60,
        )
        digests.add(done.stdout.strip())
    here = hashlib.sha256(repr(generate(300, seed=11)).encode()).hexdigest()

    assert digests == {here}


def test_a_smaller_data_set_is_the_start_of_a_larger_one() -> None:
    small, large = generate(40), generate(400)

    assert small.orders == large.orders[:40]
    assert small.customers == large.customers


def test_reference_data_has_the_dumps_shape() -> None:
    dataset = generate(0)

    assert dataset.counts() == {
        "categories": 8,
        "suppliers": 6,
        "products": 80,
        "customers": 100,
        "shippers": 3,
        "orders": 0,
        "order_lines": 0,
    }
    assert all(
        len(c.customer_id) == 5 and c.customer_id.isalpha() and c.customer_id.isupper()
        for c in dataset.customers
    )
    assert len({c.customer_id for c in dataset.customers}) == 100
    assert dict(dataset.skipped) == {}


def test_orders_start_on_new_years_day_2020_and_never_go_back() -> None:
    dataset = generate(2_000)
    dates = [order.ordered_at for order in dataset.orders]

    assert dates[0] == "2020-01-01"
    assert dates == sorted(dates)
    assert all(
        order.required_at > order.ordered_at
        and (order.shipped_at is None or order.shipped_at > order.ordered_at)
        for order in dataset.orders
    )


def test_every_order_has_one_to_five_lines_of_known_products() -> None:
    dataset = generate(2_000)
    prices = {p.product_id: p.unit_price for p in dataset.products}
    per_order = Counter(line.order_id for line in dataset.order_lines)

    assert set(per_order) == {order.order_id for order in dataset.orders}
    assert set(per_order.values()) == {1, 2, 3, 4, 5}
    assert all(
        line.unit_price == prices[line.product_id] for line in dataset.order_lines
    )


def test_discounts_and_money_are_decimals_to_the_cent() -> None:
    dataset = generate(2_000)
    cent = Decimal("0.01")

    assert {line.discount for line in dataset.order_lines} == {
        Decimal(d) for d in ("0", "0.05", "0.10", "0.15", "0.20", "0.25")
    }
    assert all(o.freight == o.freight.quantize(cent) for o in dataset.orders)
    assert all(p.unit_price == p.unit_price.quantize(cent) for p in dataset.products)


def test_some_orders_are_shipped_and_some_are_not() -> None:
    dataset = generate(1_000)
    shipped = sum(order.shipped_at is not None for order in dataset.orders)

    assert 0 < shipped < 1_000


def test_orders_refer_to_customers_and_shippers_that_exist() -> None:
    dataset = generate(1_000)
    customers = {c.customer_id for c in dataset.customers}
    shippers = {s.shipper_id for s in dataset.shippers}

    assert all(order.customer_id in customers for order in dataset.orders)
    assert all(order.ship_via in shippers for order in dataset.orders)


@pytest.mark.parametrize("orders", [-1, 2.5, True, "10"])
def test_an_impossible_size_is_refused(orders: object) -> None:
    with pytest.raises(SizeError) as caught:
        generate(orders)  # type: ignore[arg-type]

    assert caught.value.orders == orders
    assert isinstance(caught.value, SeedError)
    assert str(caught.value).startswith(f"{orders!r} orders: ")
