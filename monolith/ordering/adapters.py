"""Ordering's repository and unit of work on SQLAlchemy Core."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from migrate.kernel import money
from migrate.kernel.uow import UnitOfWork
from monolith.ordering.domain import Order, OrderLine, ShipTo
from monolith.ordering.tables import order_lines, order_numbers, orders

FIRST_ORDER_ID = 1


class SqlOrders:
    def __init__(self, connection: Connection):
        self._db = connection

    def get(self, order_id: int) -> Order | None:
        head = self._db.execute(
            sa.select(orders).where(orders.c.order_id == order_id)
        ).first()
        if head is None:
            return None

        lines = [
            OrderLine(
                product_id=row.product_id,
                unit_price=money.from_cents(row.unit_price_cents),
                quantity=row.quantity,
                discount=Decimal(row.discount_hundredths) / 100,
            )
            for row in self._db.execute(
                sa.select(order_lines)
                .where(order_lines.c.order_id == order_id)
                .order_by(order_lines.c.line_no)
            )
        ]
        return Order(
            order_id=head.order_id,
            customer_id=head.customer_id,
            ordered_at=head.ordered_at,
            required_at=head.required_at,
            lines=lines,
            freight=money.from_cents(head.freight_cents),
            ship_via=head.ship_via,
            ship_to=ShipTo(
                head.ship_name,
                head.ship_address,
                head.ship_city,
                head.ship_region,
                head.ship_postal_code,
                head.ship_country,
            ),
        )

    def add(self, order: Order) -> None:
        to = order.ship_to
        self._db.execute(
            orders.insert().values(
                order_id=order.order_id,
                customer_id=order.customer_id,
                ordered_at=order.ordered_at,
                required_at=order.required_at,
                ship_via=order.ship_via,
                freight_cents=money.to_cents(order.freight),
                ship_name=to.name,
                ship_address=to.address,
                ship_city=to.city,
                ship_region=to.region,
                ship_postal_code=to.postal_code,
                ship_country=to.country,
            )
        )
        self._db.execute(
            order_lines.insert(),
            [
                {
                    "order_id": order.order_id,
                    "line_no": n,
                    "product_id": line.product_id,
                    "unit_price_cents": money.to_cents(line.unit_price),
                    "quantity": line.quantity,
                    "discount_hundredths": int(line.discount * 100),
                }
                for n, line in enumerate(order.lines, 1)
            ],
        )

    def next_id(self) -> int:
        taken = self._db.execute(
            order_numbers.update()
            .where(order_numbers.c.id == 1)
            .values(next_order_id=order_numbers.c.next_order_id + 1)
            .returning(order_numbers.c.next_order_id)
        ).scalar()
        if taken is None:
            self._db.execute(
                order_numbers.insert().values(id=1, next_order_id=FIRST_ORDER_ID + 1)
            )
            return FIRST_ORDER_ID

        return taken - 1

    def move_next_id_past(self, order_id: int) -> None:
        current = self._db.execute(
            sa.select(order_numbers.c.next_order_id).where(order_numbers.c.id == 1)
        ).scalar()
        if current is None:
            self._db.execute(
                order_numbers.insert().values(id=1, next_order_id=order_id + 1)
            )
        elif current <= order_id:
            self._db.execute(
                order_numbers.update()
                .where(order_numbers.c.id == 1)
                .values(next_order_id=order_id + 1)
            )


class OrderingUnitOfWork(UnitOfWork):
    context = "ordering"

    def __enter__(self) -> OrderingUnitOfWork:
        super().__enter__()
        self.orders = SqlOrders(self.connection)
        return self
