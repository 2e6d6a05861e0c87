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
   counts, totals and chunk checksums, compared afresh before each step
   as `migrate verify` compares it: as of the writer's outbox position,
   once the copy has applied every event up to it (waiting up to
   `settle` seconds), a chunk that differs being compared again after
   the copy caught up; so lag alone is not a refusal. Each comparison is
   kept as the context's latest parity record (`parity_records`), by
   `migrate shift`.

The router enforces the SLO on its own, whatever the shift is doing: a
breach sets the weight to 0 at once, and the shift sees it and stops.
`migrate rollout pause|resume|stop <context>` act on a running shift
through the state store. What this module does not do: move writes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from migrate.router.rollout import Gate, RolloutReport, Say, rollout, shadow_gate
from migrate.system import System

log = logging.getLogger(__name__)

ACTOR = "migrate shift"
# How long a parity check waits for the copy to apply the writer's events.
SETTLE_SECONDS = 30.0


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
    from migrate.router.steering import contracts_gate

    return [
        contracts_gate(system.settings),
        shadow_gate(client, max_diff_rate),
        parity_gate(system),
    ]


def parity_gate(system: System, settle: float = SETTLE_SECONDS) -> Gate:
    from migrate.errors import SyncBehind
    from migrate.kernel.sql import create_engine
    from migrate.router.state import MONOLITH
    from migrate.sync.compare import SERVICE, compare
    from migrate.sync.parity_records import record_parity

    def parity(context: str) -> str | None:
        settings = system.settings
        status = system.state.status().get(context)
        writer = (SERVICE if status is not None and status.writer != MONOLITH
                  else MONOLITH)
        try:
            found = compare(
                system.manifest.context(context),
                create_engine(settings.monolith_url),
                create_engine(settings.service_url(context)),
                writer=writer, timeout=settle,
            ).parity
        except SyncBehind as behind:
            return f"{context}'s copy cannot be compared: {behind}"

        record_parity(settings, context, found, ACTOR)
        if not found.differences:
            return None

        shown = "; ".join(found.differences[:3])
        more = (f"; and {len(found.differences) - 3} more"
                if len(found.differences) > 3 else "")
        return (f"{context}'s copy is not in parity with the monolith: {shown}{more} "
                f"(see `migrate verify {context}`)")

    return parity
