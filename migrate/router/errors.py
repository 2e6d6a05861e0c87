"""Every failure the router's state and tables can raise, drawn once.

    RouterError
    ├── UnknownContext      a context the state store has never registered
    ├── UnknownBackend      a backend name with no base URL
    ├── InvalidBackendUrl   a base URL that is not http:// or https://
    ├── InvalidWeight       a read weight outside whole percents 0-100
    ├── InvalidWriter       a writer other than the monolith or the service
    ├── InvalidService      a context's service named like the monolith
    ├── InvalidRule         a route rule the table cannot compile
    ├── RouteTaken          a route already owned by another context
    ├── ServiceStillWrites  a service swapped while it holds the writes
    ├── UnknownRoute        a route name its context does not have
    ├── InvalidSetting      a shadow, SLO, override or rollout setting out of
    │                       its range
    ├── PhaseRefused        a change the context's migration phase forbids
    ├── GateRefused         a raise of a weight that a gate (contracts) refuses
    ├── RolloutStopped      a progressive shift that stopped short, and why
    ├── InvalidBody         an admin call's body that is not what the call takes
    └── AdminUnavailable    the router's admin API cannot be reached or refused

Each carries the offending value, and its message names the rule it broke.
`REFUSALS` gives each the HTTP status and stable error code the admin API
and the dashboard answer with; `migrate --json` reports the same codes.
"""

from __future__ import annotations

from collections.abc import Iterable

from migrate.errors import MigrateError


class RouterError(MigrateError):
    """Root of the router's errors: a request the operator can fix."""


class UnknownContext(RouterError):
    def __init__(self, context: str, known: Iterable[str]):
        self.context = context
        self.known = tuple(sorted(known))
        listed = ", ".join(self.known) or "none yet"
        super().__init__(
            f"context '{context}' is not registered with the router; "
            f"known contexts: {listed}"
        )


class UnknownBackend(RouterError):
    def __init__(self, backend: str, known: Iterable[str]):
        self.backend = backend
        self.known = tuple(sorted(known))
        listed = ", ".join(self.known) or "none yet"
        super().__init__(
            f"backend '{backend}' has no URL; set it first "
            f"(known backends: {listed})"
        )


class InvalidBackendUrl(RouterError):
    def __init__(self, backend: str, url: str):
        self.backend = backend
        self.url = url
        super().__init__(
            f"backend '{backend}' URL '{url}': a backend URL starts with "
            "http:// or https://"
        )


class InvalidWeight(RouterError):
    def __init__(self, context: str, weight: object):
        self.context = context
        self.weight = weight
        super().__init__(f"weight {weight!r} for {context}: weights run 0-100")


class InvalidWriter(RouterError):
    def __init__(self, context: str, writer: str, allowed: Iterable[str]):
        self.context = context
        self.writer = writer
        self.allowed = tuple(allowed)
        choices = " or ".join(f"'{name}'" for name in self.allowed)
        super().__init__(
            f"writer '{writer}' for {context}: the writer is {choices}"
        )


class InvalidService(RouterError):
    def __init__(self, context: str, service: str):
        self.context = context
        self.service = service
        super().__init__(
            f"service '{service}' for {context}: a context's service is a backend "
            "other than the monolith"
        )


class InvalidRule(RouterError):
    def __init__(self, rule: str, problem: str):
        self.rule = rule
        self.problem = problem
        super().__init__(f"route rule '{rule}': {problem}")


class RouteTaken(RouterError):
    def __init__(self, method: str, rule: str, owner: str, claimant: str):
        self.method = method
        self.rule = rule
        self.owner = owner
        self.claimant = claimant
        super().__init__(
            f"route {method} {rule} belongs to {owner}, not {claimant}: "
            "a route has one owner"
        )


class ServiceStillWrites(RouterError):
    def __init__(self, context: str, service: str, replacement: str):
        self.context = context
        self.service = service
        self.replacement = replacement
        super().__init__(
            f"{context} writes to '{service}'; move its writes to the monolith "
            f"before its service becomes '{replacement}'"
        )


class UnknownRoute(RouterError):
    def __init__(self, context: str, route: str, known: Iterable[str]):
        self.context = context
        self.route = route
        self.known = tuple(known)
        listed = "; ".join(self.known) or "none"
        super().__init__(
            f"route '{route}' is not one of {context}'s routes that fit here "
            f"({listed})"
        )


class InvalidSetting(RouterError):
    def __init__(self, context: str | None, setting: str, value: object, rule: str):
        self.context = context
        self.setting = setting
        self.value = value
        where = f" for {context}" if context else ""
        super().__init__(f"{setting} {value!r}{where}: {rule}")


class PhaseRefused(RouterError):
    def __init__(self, context: str, phase: str, wanted: str, rule: str):
        self.context = context
        self.phase = phase
        self.wanted = wanted
        super().__init__(f"{context} is in phase '{phase}', so not {wanted}: {rule}")


class GateRefused(RouterError):
    """A gate said no to raising a weight; `refusal` is its one line."""

    def __init__(self, context: str, weight: int, refusal: str):
        self.context = context
        self.weight = weight
        self.refusal = refusal
        super().__init__(refusal)


class RolloutStopped(RouterError):
    """A rollout ended before its last step; `report` says where and why."""

    def __init__(self, context: str, weight: int, reason: str, report: object):
        self.context = context
        self.weight = weight
        self.reason = reason
        self.report = report
        super().__init__(
            f"rollout of {context} stopped with its reads at {weight} %: {reason}"
        )


class InvalidBody(RouterError):
    """A request body the admin API or the dashboard does not take;
    `field` is None when the body as a whole is wrong."""

    def __init__(self, field: str | None, problem: str):
        self.field = field
        super().__init__(problem)


class AdminUnavailable(RouterError):
    def __init__(self, where: str, problem: str):
        self.where = where
        self.problem = problem
        super().__init__(f"router admin API at {where}: {problem}")


# What the operator did wrong, as a status and a stable error code; the
# admin API, the dashboard and the CLI's --json errors answer from this one
# table, the first kind that matches winning.
REFUSALS: tuple[tuple[type[Exception], int, str], ...] = (
    (InvalidBody, 400, "bad_request"),
    (GateRefused, 409, "gate_refused"),
    (PhaseRefused, 409, "phase_refused"),
    (InvalidWeight, 400, "invalid_weight"),
    (UnknownContext, 404, "unknown_context"),
    (UnknownRoute, 404, "unknown_route"),
    (InvalidSetting, 409, "refused"),
    (RouterError, 400, "refused"),
)


def refusal_of(error: Exception) -> tuple[int, str] | None:
    """The status and error code for an operator's mistake; None for a
    failure of the router itself."""
    for kind, status, code in REFUSALS:
        if isinstance(error, kind):
            return status, code
    return None
