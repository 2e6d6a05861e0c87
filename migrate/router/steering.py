"""The operator's moves on a context, one function each, whoever asks.

`migrate shift`, the admin API and the dashboard all shift reads, pause
or resume a rollout and roll back through these functions, so each move
reaches the state store (and its ledger) the same way, with the caller's
actor and reason, whatever the door.

Raising a context's (or a route's) read weight first asks the gate, a
callable `gate(context) -> str | None` (`raise_gate`: the contracts, then
the last data check, everywhere but in tests of the store); a gate that
cannot look says no. Its refusal is raised as `GateRefused` and nothing
changes. Lowering a weight never waits for a gate: backing out must
always work. A context's weight set to 0 is a rollback: any rollout of
the context ends with it.

What these functions do not do: move writes (that needs the fenced flip
of `migrate shift --writes`), nor check that the gate's answer still
holds a moment later; the gate is asked once, just before the change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from migrate.router.errors import GateRefused, InvalidSetting, InvalidWeight
from migrate.router.rollout import pause_rollout, resume_rollout, stop_rollout
from migrate.router.state import StateStore
from migrate.settings import Settings

log = logging.getLogger(__name__)

Gate = Callable[[str], "str | None"]


def contracts_gate(settings: Settings | None, unknown: str = "") -> Gate:
    """The contracts gate as `migrate shift` asks it, for these settings.
    Without settings (`unknown` says why) it refuses every raise: a gate
    that cannot look says no."""

    def contracts(context: str) -> str | None:
        from migrate.contracts.gate import refusal

        if settings is None:
            return f"{context}'s contracts cannot be checked here: {unknown}"
        return refusal(context, settings)

    return contracts


def raise_gate(settings: Settings | None, unknown: str = "") -> Gate:
    """What a shift of reads towards a service asks: its contracts' yes,
    then the copy gate's."""
    contracts = contracts_gate(settings, unknown)
    copy = None if settings is None else copy_gate(settings)

    def gate(context: str) -> str | None:
        refused = contracts(context)
        if refused is not None or copy is None:
            return refused
        return copy(context)

    return gate


def copy_gate(settings: Settings) -> Gate:
    """That the last check of the context's copy (`migrate verify`, a
    backfill, a rollout's parity gate) found no difference. A context whose
    copy was never checked since extraction has its extraction's check; a
    record that cannot be read refuses, as contracts that cannot be
    checked do."""

    def gate(context: str) -> str | None:
        from migrate.errors import UnreadableParityRecord
        from migrate.sync.parity_records import last_parity

        try:
            record = last_parity(settings, context)
        except UnreadableParityRecord as error:
            return f"{context}'s copy cannot be judged: {error}"

        if record is None or record.ok:
            return None

        shown = "; ".join(record.differences[:3])
        return (f"{context}'s copy differed from the monolith when last checked "
                f"({record.by}, {record.checked_at}): {shown}; mend it and run "
                f"`migrate verify {context}`")

    return gate


def current_weight(store: StateStore, context: str, route: str | None) -> int:
    """The weight a shift starts from: the context's, or the highest of
    the routes `route` names (their own weight, else the context's)."""
    statuses = store.status()
    if context not in statuses:
        store.history(context)  # raises UnknownContext, naming the known ones
    status = statuses[context]
    if route is None:
        return status.read_weight

    method, _, rule = route.strip().rpartition(" ")
    named = [
        r for r in status.routes
        if r.reads and r.rule == rule.strip()
        and (not method or r.method == method.upper())
    ]
    return max(
        (status.route_weights.get(r.name, status.read_weight) for r in named),
        default=status.read_weight,
    )


def shift_reads(
    store: StateStore,
    context: str,
    weight: int,
    actor: str,
    reason: str,
    *,
    gate: Gate | None,
    route: str | None = None,
) -> int:
    """Send `weight` % of the context's reads (or one route's) to its
    service; a raise needs the gate's yes. Returns the store's revision."""
    whole = isinstance(weight, int) and not isinstance(weight, bool)
    if not whole or not 0 <= weight <= 100:
        raise InvalidWeight(context, weight)

    before = current_weight(store, context, route)
    if gate is not None and weight > before:
        refused = gate(context)
        if refused is not None:
            log.info("refused to raise %s from %s %% to %s %%: %s", context, before,
                     weight, refused)
            raise GateRefused(context, weight, refused)

    if weight == 0 and route is None:
        # 0 is the instant rollback: it ends the context's rollout too,
        # whether or not the process walking it is still there to notice.
        revision = store.roll_back(context, actor, reason)
    else:
        revision = store.set_weight(context, weight, actor, reason, route=route)
    log.info("%s shifted %s%s to %s %% (%s)", actor, context,
             f" {route}" if route else "", weight, reason)
    return revision


def pause(store: StateStore, context: str, actor: str, reason: str) -> int:
    """Stop the clock of the context's running rollout."""
    # A rollout whose walker is gone is over, not something to pause.
    store.end_stale_rollouts(actor)
    if not pause_rollout(store, context, reason, actor=actor):
        _no_rollout(store, context, "pause")
    return store.revision()


def resume(store: StateStore, context: str, actor: str, reason: str) -> int:
    """Start the clock of the context's paused rollout again."""
    # Nobody is left to walk it on: resuming would leave it paused forever.
    store.end_stale_rollouts(actor)
    if not resume_rollout(store, context, reason, actor=actor):
        _no_rollout(store, context, "resume")
    return store.revision()


def stop(store: StateStore, context: str, actor: str, reason: str) -> int:
    """End the context's active rollout where it is."""
    if not stop_rollout(store, context, reason, actor=actor):
        _no_rollout(store, context, "stop")
    return store.revision()


def roll_back(store: StateStore, context: str, actor: str, reason: str) -> int:
    """Every read of the context back to the monolith; a rollout of it
    ends as rolled back. Writes stay with whoever writes."""
    revision = store.roll_back(context, actor, reason)
    log.info("%s rolled %s's reads back to the monolith (%s)", actor, context,
             reason)
    return revision


def _no_rollout(store: StateStore, context: str, action: str) -> None:
    store.history(context)  # raises UnknownContext, naming the known ones
    current = store.rollout(context)
    state = current.state if current else "none"
    raise InvalidSetting(context, "rollout", state,
                         f"there is no rollout to {action}")
