"""Provider states: named situations a provider is put in before a replay.

A consumer's contract says what it expects *given* a state ("an invoice is
open"). Each provider lists the states it can be put in, in
`contracts/states/<provider>.py`, as handlers registered on a
`ProviderStates`:

    STATES = ProviderStates("billing")

    @STATES.given("an invoice is open", on=(MONOLITH,))
    def invoice_is_open(stage, invoice_id, customer_id):
        ...

A handler receives the stage (the host being verified: `MonolithStage` or
`ServiceStage`) and the state's parameters from the contract, and gets there
through the context's own API, handlers and events only: never SQL behind
the context's back. The stage offers the same on either host (see
`migrate.contracts.stages`), so a context's states are written once and
serve both; `on` limits a handler to some hosts, for a state that needs
other contexts beside it (ordering places an order through catalog,
customers and shipping, which only the monolith hosts together). Handlers
must be idempotent: one verification sets the same state for several
interactions.

`migrate extract <context>` writes `<context>_states.py` beside the service:
`served_on(SERVICE, "contracts.states.<context>")`, the context's states as
the service serves them, which the verification of the service reads.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any

from migrate.contracts.errors import UnknownState

MONOLITH = "monolith"
SERVICE = "service"
HOSTS = (MONOLITH, SERVICE)

StateHandler = Callable[..., None]


class ProviderStates:
    def __init__(self, provider: str):
        self.provider = provider
        self._handlers: dict[tuple[str, str], StateHandler] = {}

    def given(
        self, name: str, *, on: Iterable[str] = HOSTS
    ) -> Callable[[StateHandler], StateHandler]:
        hosts = tuple(on)
        unknown = [host for host in hosts if host not in HOSTS]
        if unknown:
            raise ValueError(f"state {name!r}: host {unknown[0]!r}; hosts are "
                             f"{', '.join(HOSTS)}")

        def register(handler: StateHandler) -> StateHandler:
            for host in hosts:
                if (name, host) in self._handlers:
                    raise ValueError(f"state {name!r} of {self.provider} has two "
                                     f"handlers on the {host}")
                self._handlers[(name, host)] = handler
            return handler

        return register

    def handler(self, name: str, host: str) -> StateHandler:
        try:
            return self._handlers[(name, host)]
        except KeyError:
            raise UnknownState(self.provider, name, host) from None

    def names(self, host: str) -> list[str]:
        return sorted(name for name, on in self._handlers if on == host)

    def set(self, stage: Any, name: str, params: dict[str, Any]) -> None:
        self.handler(name, stage.host)(stage, **params)


def states_of(provider: str, module_name: str | None = None) -> ProviderStates:
    """The provider's states (from `contracts.states.<provider>` unless named);
    none when it has no states module."""
    module_name = module_name or f"contracts.states.{provider}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name not in (module_name, module_name.rpartition(".")[0]):
            raise
        return ProviderStates(provider)

    states: ProviderStates = module.STATES
    return states


def served_on(host: str, module_name: str) -> ProviderStates:
    """The states a context declares in `module_name`, as `host` serves them:
    each set, when asked for, by the handler the context gives that host.

    Resolved when a state is set, so a state without a handler for the host
    fails that interaction, naming the state, not the whole verification."""
    if host not in HOSTS:
        raise ValueError(f"host {host!r}: hosts are {', '.join(HOSTS)}")

    declared: ProviderStates = importlib.import_module(module_name).STATES
    return _Served(declared, host)


class _Served(ProviderStates):
    def __init__(self, declared: ProviderStates, host: str):
        super().__init__(declared.provider)
        self._declared = declared
        self._host = host

    def handler(self, name: str, host: str) -> StateHandler:
        if host != self._host:
            raise UnknownState(self.provider, name, host)

        return self._declared.handler(name, host)

    def names(self, host: str) -> list[str]:
        return self._declared.names(host) if host == self._host else []
