"""Provider states of customers: who is registered, and ids that are free.

A customer registers through the context's own handler on whichever host
writes customers for the block (the stage makes a replica service the
writer for it).
"""

from __future__ import annotations

from migrate.contracts.stages import Stage
from migrate.contracts.states import ProviderStates
from monolith.customers import api, handlers
from monolith.customers.domain import Customer

STATES = ProviderStates("customers")


@STATES.given("a customer is registered")
def customer_registered(stage: Stage, customer_id: str,
                        company_name: str = "Alfreds Futterkiste") -> None:
    ports = stage.ports("customers")
    if api.exists(ports.query(), customer_id):
        return

    with stage.writing("customers"):
        handlers.register_customers(ports.command(),
                                    [Customer(customer_id, company_name)])


@STATES.given("no customer has the id")
def no_such_customer(stage: Stage, customer_id: str) -> None:
    if api.exists(stage.ports("customers").query(), customer_id):
        raise RuntimeError(f"customer {customer_id!r} is registered")
