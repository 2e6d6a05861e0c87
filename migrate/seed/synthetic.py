"""A synthetic data set shaped like Northwind, of any size, the same every time.

`generate(orders, seed)` draws 8 categories, 6 suppliers, 80 products, 100
customers (five-letter upper-case ids) and 3 shippers, then the orders: the
first on 2020-01-01 and about twenty a day after that, each with 1-5 lines of
distinct products at the product's price, a discount of 0, 0.05, 0.10, 0.15,
0.20 or 0.25 (none being the most common), freight to the cent, and about
nine in ten shipped within two weeks. Order ids run from 1; orders refer to
employees 1-9, as Northwind's do.

What it guarantees: the same `orders` and `seed` give an equal `Dataset` in
any process on the same Python version (every draw comes from one
`random.Random(seed)`; nothing depends on hash order or on a float's last
bit). The reference data is drawn before any order, so a smaller data set is
the start of a larger one with the same seed. 100,000 orders (about 300,000
lines) take about a second.

What it does not do: imitate Northwind's distributions, or fill the tables
the kit does not load (`skipped` is empty).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from migrate.kernel import money
from migrate.seed.dataset import (
    Category,
    Customer,
    Dataset,
    Order,
    OrderLine,
    Product,
    Shipper,
    Supplier,
)
from migrate.seed.errors import SizeError

FIRST_DAY = date(2020, 1, 1)

_CATEGORIES = (
    ("Drinks", "Juices, teas and coffees"),
    ("Sauces", "Dressings, relishes and spreads"),
    ("Sweets", "Cakes, biscuits and chocolate"),
    ("Cheese", "Hard, soft and blue cheeses"),
    ("Bakery", "Breads, crackers and pasta"),
    ("Meat", "Cured and smoked meats"),
    ("Greens", "Dried fruit, beans and tofu"),
    ("Fish", "Smoked, salted and tinned fish"),
)
_PRODUCT_WORDS = (
    "Golden", "Alpine", "Harbour", "Smoky", "Orchard", "Valley", "Northern",
    "Rustic", "Coastal", "Highland", "Spiced", "Garden",
)
_PRODUCT_KINDS = (
    "Tea", "Syrup", "Mustard", "Toffee", "Cheddar", "Rye Bread", "Sausage",
    "Lentils", "Herring", "Lemonade", "Chutney", "Crackers",
)
_PACKS = ("6 x 500 ml", "12 x 330 ml", "24 x 250 g", "10 x 1 kg", "48 pieces")
_TOWNS = (
    ("Lisbon", "Portugal", None),
    ("Ghent", "Belgium", None),
    ("Bergen", "Norway", None),
    ("Porto Alegre", "Brazil", "RS"),
    ("Boise", "USA", "ID"),
    ("Lyon", "France", None),
    ("Graz", "Austria", None),
    ("Cork", "Ireland", "Co. Cork"),
    ("Kobe", "Japan", None),
    ("Halifax", "Canada", "NS"),
)
_SURNAMES = (
    "Almeida", "Brandt", "Castell", "Dovre", "Eklund", "Ferraz", "Gallo",
    "Hartmann", "Ibarra", "Jansen", "Kowal", "Lindqvist", "Moreau", "Novak",
)
_GIVEN_NAMES = ("Ana", "Bram", "Clara", "Dev", "Elin", "Farid", "Greta", "Hugo")
_TRADES = ("Market", "Grocers", "Delicatessen", "Trading", "Provisions", "Foods")
_TITLES = ("Owner", "Buyer", "Sales Manager", "Accounting Manager")
_STREETS = ("Harbour Road", "Mill Lane", "Rua Nova", "Kirkegata", "Quai Est")
_SHIPPERS = ("Swift Freight", "Blue Line Cargo", "Parcel Partners")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

# Undiscounted lines are as common as all the discounted ones together.
_DISCOUNTS = tuple(
    Decimal(text)
    for text in ("0.00",) * 5 + ("0.05", "0.10", "0.15", "0.20", "0.25")
)
_SUPPLIERS = 6
_PRODUCTS = 80
_CUSTOMERS = 100
_EMPLOYEES = 9
_ORDERS_PER_DAY = 20
_SHIPPED_SHARE = 0.9


def generate(orders: int, seed: int = 7) -> Dataset:
    """A deterministic Northwind-shaped data set with exactly `orders` orders."""
    if isinstance(orders, bool) or not isinstance(orders, int) or orders < 0:
        raise SizeError(orders)

    rng = random.Random(seed)
    categories = tuple(
        Category(category_id=number, name=name, description=description)
        for number, (name, description) in enumerate(_CATEGORIES, start=1)
    )
    suppliers = _suppliers(rng)
    products = _products(rng, len(categories), len(suppliers))
    customers = _customers(rng)
    shippers = tuple(
        Shipper(shipper_id=number, company_name=name, phone=_phone(rng))
        for number, name in enumerate(_SHIPPERS, start=1)
    )
    drawn_orders, lines = _orders(rng, orders, products, customers, len(shippers))
    return Dataset(
        categories=categories,
        suppliers=suppliers,
        products=products,
        customers=customers,
        shippers=shippers,
        orders=drawn_orders,
        order_lines=lines,
    )


def _suppliers(rng: random.Random) -> tuple[Supplier, ...]:
    suppliers = []
    for number in range(1, _SUPPLIERS + 1):
        city, country, _ = rng.choice(_TOWNS)
        suppliers.append(
            Supplier(
                supplier_id=number,
                company_name=f"{rng.choice(_SURNAMES)} {rng.choice(_TRADES)}",
                contact_name=_person(rng),
                city=city,
                country=country,
                phone=_phone(rng),
            )
        )
    return tuple(suppliers)


def _products(
    rng: random.Random, categories: int, suppliers: int
) -> tuple[Product, ...]:
    names = [f"{word} {kind}" for word in _PRODUCT_WORDS for kind in _PRODUCT_KINDS]
    return tuple(
        Product(
            product_id=number,
            name=name,
            supplier_id=rng.randint(1, suppliers),
            category_id=rng.randint(1, categories),
            quantity_per_unit=rng.choice(_PACKS),
            unit_price=money.from_cents(rng.randint(250, 12_000)),
            units_in_stock=rng.randint(0, 120),
            discontinued=rng.random() < 0.1,
        )
        for number, name in enumerate(rng.sample(names, _PRODUCTS), start=1)
    )


def _customers(rng: random.Random) -> tuple[Customer, ...]:
    ids: list[str] = []
    taken: set[str] = set()
    while len(ids) < _CUSTOMERS:
        candidate = "".join(rng.choices(_LETTERS, k=5))
        if candidate not in taken:
            taken.add(candidate)
            ids.append(candidate)

    customers = []
    for customer_id in ids:
        city, country, region = rng.choice(_TOWNS)
        customers.append(
            Customer(
                customer_id=customer_id,
                company_name=f"{rng.choice(_SURNAMES)} {rng.choice(_TRADES)}",
                contact_name=_person(rng),
                contact_title=rng.choice(_TITLES),
                address=f"{rng.randint(1, 250)} {rng.choice(_STREETS)}",
                city=city,
                region=region,
                postal_code=f"{rng.randint(1000, 99_999):05d}",
                country=country,
                phone=_phone(rng),
            )
        )
    return tuple(customers)


def _orders(
    rng: random.Random,
    count: int,
    products: tuple[Product, ...],
    customers: tuple[Customer, ...],
    shippers: int,
) -> tuple[tuple[Order, ...], tuple[OrderLine, ...]]:
    orders: list[Order] = []
    lines: list[OrderLine] = []
    days: dict[int, str] = {}

    def day(offset: int) -> str:
        if offset not in days:
            days[offset] = (FIRST_DAY + timedelta(days=offset)).isoformat()
        return days[offset]

    offset = 0
    for order_id in range(1, count + 1):
        if order_id > 1 and rng.random() < 1 / _ORDERS_PER_DAY:
            offset += 1
        customer = rng.choice(customers)
        shipped = rng.random() < _SHIPPED_SHARE
        orders.append(
            Order(
                order_id=order_id,
                customer_id=customer.customer_id,
                employee_id=rng.randint(1, _EMPLOYEES),
                ordered_at=day(offset),
                required_at=day(offset + rng.choice((14, 28, 42))),
                shipped_at=day(offset + rng.randint(1, 14)) if shipped else None,
                ship_via=rng.randint(1, shippers),
                # Most freight is small change, a little of it is hundreds.
                freight=money.from_cents(rng.randint(1, 2_500) * rng.randint(1, 40)),
                ship_name=customer.company_name,
                ship_address=customer.address,
                ship_city=customer.city,
                ship_region=customer.region,
                ship_postal_code=customer.postal_code,
                ship_country=customer.country,
            )
        )
        for product in rng.sample(products, rng.randint(1, 5)):
            lines.append(
                OrderLine(
                    order_id=order_id,
                    product_id=product.product_id,
                    unit_price=product.unit_price,
                    quantity=rng.randint(1, 60),
                    discount=rng.choice(_DISCOUNTS),
                )
            )
    return tuple(orders), tuple(lines)


def _person(rng: random.Random) -> str:
    return f"{rng.choice(_GIVEN_NAMES)} {rng.choice(_SURNAMES)}"


def _phone(rng: random.Random) -> str:
    return f"({rng.randint(10, 999)}) 555-{rng.randint(0, 9999):04d}"
