"""Every failure the contracts tooling raises, drawn once.

    ContractError               a user-fixable problem with contracts
    ├── MalformedContract       a Pact file that breaks a rule of the format
    ├── UnknownProvider         a provider that no contract names
    ├── UnknownState            a provider state with no handler on a host
    ├── StateFailed             a provider state whose handler raised
    └── NothingPublished        a message the provider did not publish

A verification that finds mismatches is not an error: it is a result
(`migrate.contracts.verify.Verification`), stored for the deploy gate.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from migrate.errors import MigrateError


class ContractError(MigrateError):
    """Root of the contracts tooling's errors."""


class MalformedContract(ContractError):
    """Raised once for a file, listing every rule it breaks.

    A contract is input the command reads, not the kit's configuration, so
    a malformed one is refused as bad input is: exit 1 (exit 2 is for bad
    usage and for a wrong manifest or environment)."""

    exit_code = 1

    def __init__(self, path: Path, problems: Iterable[str]):
        self.path = path
        self.problems = list(problems)
        listed = "; ".join(self.problems)
        super().__init__(f"contract {path.name} is malformed: {listed}")


class UnknownProvider(ContractError):
    def __init__(self, provider: str, known: Iterable[str]):
        self.provider = provider
        names = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"no contract names provider {provider!r}; the providers are {names}"
        )


class UnknownState(ContractError):
    def __init__(self, provider: str, state: str, host: str):
        self.provider = provider
        self.state = state
        self.host = host
        super().__init__(
            f"provider state {state!r} of {provider} has no handler on the {host}; "
            f"add one to contracts/states/{provider}.py"
        )


class StateFailed(ContractError):
    def __init__(self, provider: str, state: str, host: str, reason: str):
        self.provider = provider
        self.state = state
        self.host = host
        super().__init__(
            f"provider state {state!r} of {provider} failed on the {host}: {reason}"
        )


class NothingPublished(ContractError):
    def __init__(self, provider: str, description: str, states: Iterable[str]):
        self.provider = provider
        self.description = description
        given = ", ".join(repr(s) for s in states) or "no state"
        super().__init__(
            f"{provider} published no event for {description!r} (given {given}); "
            "a message contract is kept by an event in the provider's outbox"
        )
