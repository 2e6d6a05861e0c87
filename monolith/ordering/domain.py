"""Orders. Plain Python: no web framework, no ORM, no vendor."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from migrate.kernel import money

# An order's event must fit in one SNS message (256 KiB), and its amounts in
# the 64-bit cents every database here stores.
MAX_LINES = 500
MAX_QUANTITY = 1_000_000


class OrderingError(Exception):
    """Root of the errors ordering's rules raise."""


class OrderNotFound(OrderingError):
    def __init__(self, order_id: int):
        super().__init__(f"no order {order_id}")
        self.order_id = order_id


class UnknownProduct(OrderingError):
    def __init__(self, product_id: int):
        super().__init__(f"product {product_id} is not in the catalog")
        self.product_id = product_id


class UnknownCustomer(OrderingError):
    def __init__(self, customer_id: str):
        super().__init__(f"customer {customer_id!r} is not known")
        self.customer_id = customer_id


class UnknownShipper(OrderingError):
    def __init__(self, shipper_id: int):
        super().__init__(f"shipper {shipper_id} is not registered")
        self.shipper_id = shipper_id


class InvalidOrder(OrderingError):
    """An order that breaks a rule of ordering (no lines, a bad quantity)."""


@dataclasses.dataclass(frozen=True)
class OrderLine:
    product_id: int
    unit_price: Decimal
    quantity: int
    discount: Decimal

    def __post_init__(self) -> None:
        if not 0 < self.quantity <= MAX_QUANTITY:
            raise InvalidOrder(
                f"quantity {self.quantity} of product {self.product_id}: "
                f"quantities run 1-{MAX_QUANTITY}"
            )
        if not Decimal("0") <= self.discount < Decimal("1"):
            raise InvalidOrder(
                f"discount {self.discount} of product {self.product_id}: "
                "discounts run from 0 to below 1"
            )

    @property
    def amount(self) -> Decimal:
        return money.line_amount(self.unit_price, self.quantity, self.discount)


@dataclasses.dataclass(frozen=True)
class ShipTo:
    name: str | None = None
    address: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None


@dataclasses.dataclass
class Order:
    order_id: int
    customer_id: str
    ordered_at: str
    lines: list[OrderLine]
    freight: Decimal = Decimal("0.00")
    ship_via: int | None = None
    ship_to: ShipTo = dataclasses.field(default_factory=ShipTo)
    required_at: str | None = None

    def __post_init__(self) -> None:
        if not self.lines:
            raise InvalidOrder(f"order {self.order_id} has no lines")
        if len(self.lines) > MAX_LINES:
            raise InvalidOrder(
                f"order {self.order_id} has {len(self.lines)} lines; "
                f"an order has at most {MAX_LINES}"
            )
        if not Decimal("0") <= self.freight <= Decimal("1000000"):
            raise InvalidOrder(
                f"freight {self.freight}: freight runs 0-1000000"
            )

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00")) + self.freight
