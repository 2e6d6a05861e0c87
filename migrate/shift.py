"""A progressive shift of a context's reads, judged by the running router.

`shift_reads(system, "billing", (1, 5, 25, 50, 100), every=300)` is what
`migrate shift billing --steps 1,5,25,50,100 --every 5m` runs: the walk of
`migrate.router.rollout`, with its SLO verdicts asked of the router that
serves the system (its admin API), and before each step these gates, in
this order (cheapest first), the first refusal stopping the shift where
it is:

1. `contracts`: the context's contracts are kept on every host, by their
   latest recorded verifications (`migrate.contracts.gate.refusal`);
2. `shadow_differences`: of the requests the router has shadowed for the
   context since it started, at most `max_diff_rate` differed or got no
   answer from the other side (none shadowed is no refusal: shadowing may
   be off);
3. `parity`: the service's copy agrees with the monolith's tables in
   counts, totals and chunk checksums (`migrate verify`, run afresh before
   each step). A copy that differs while events are still on their way is
   checked again once the sync has applied them (up to `settle` seconds),
   so lag alone is not a refusal.

The router enforces the SLO on its own, whatever the shift is doing: a
breach sets the weight to 0 at once, and the shift sees it and stops.
`migrate rollout pause|resume|stop <context>` act on a running shift
through the state store. What this module does not do: move writes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from migrate.router.rollout import Gate, RolloutReport, Say, rollout, shadow_gate
from migrate.system import System

log = logging.getLogger(__name__)

ACTOR = "migrate shift"
# How long a parity difference may wait for the sync to catch up.
SETTLE_SECONDS = 10.0


def shift_reads(
    system: System,
    context: str,
    steps: Sequence[int],
    every: float,
    *,
    max_diff_rate: float = 0.01,
    patience: float | None = None,
    check_every: float = 1.0,
    reason: str = "",
    progress: Say | None = None,
) -> RolloutReport:
    """Walk `context`'s reads through `steps`, `every` seconds apart, each
    step judged by the router's SLO verdict and the gates."""
    from migrate.router.admin import AdminClient

    client = AdminClient.for_state(system.settings.state_path)
    return rollout(
        system.state, context, steps, every,
        judge=client.verdict, gates=gates(system, client, max_diff_rate),
        actor=ACTOR, reason=reason, patience=patience, check_every=check_every,
        progress=progress,
    )


def gates(system: System, client: object, max_diff_rate: float) -> list[Gate]:
    """The gates of a shift, in the order they are asked."""
    return [
        contracts_gate(system),
        shadow_gate(client, max_diff_rate),
        parity_gate(system),
    ]


def contracts_gate(system: System) -> Gate:
    from migrate.contracts.gate import refusal

    def contracts(context: str) -> str | None:
        return refusal(context, system.settings)

    return contracts


def parity_gate(
    system: System,
    settle: float = SETTLE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> Gate:
    from migrate.kernel.sql import create_engine
    from migrate.sync.backfill import parity as compare

    def parity(context: str) -> str | None:
        owned = system.manifest.context(context)
        source = create_engine(system.settings.monolith_url)
        copy = create_engine(system.settings.service_url(context))
        found = compare(owned, source, copy).differences
        if found and _caught_up(system, context, settle, sleep):
            # Events on their way make a copy differ for a moment; only a
            # difference that outlives them counts.
            found = compare(owned, source, copy).differences
        if not found:
            return None

        shown = "; ".join(found[:3])
        more = f"; and {len(found) - 3} more" if len(found) > 3 else ""
        return (f"{context}'s copy is not in parity with the monolith: {shown}{more} "
                f"(see `migrate verify {context}`)")

    return parity


def _caught_up(
    system: System, context: str, settle: float, sleep: Callable[[float], None]
) -> bool:
    """Wait until neither side has events of the other's to apply; False
    if some are still pending after `settle` seconds."""
    from migrate.sync.lag import lag_by_direction

    deadline = time.monotonic() + settle
    while sum(lag_by_direction(system, context).values()):
        if time.monotonic() >= deadline:
            return False
        sleep(0.2)
    return True
