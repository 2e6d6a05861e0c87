"""`migrate extract <context>`: from a context in the monolith to a service.

Generate the service, build its own database with its own Alembic
environment (the service starts as a replica: it follows, it does not
write), register the context's routes with the router at weight 0 (nothing
moves yet; phase extracted), create the service's queues so that sync is
subscribed before the snapshot, backfill, and check the copy: counts, and
totals to the cent. The check is kept (`parity_records`); a copy in parity
moves the context to phase syncing, since from then on the outbox events
keep it in step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import sqlalchemy as sa

from migrate.errors import AlreadyExtracted, SystemNotRunning
from migrate.extract.generate import Extraction, generate
from migrate.hosts.replica import settle_removals
from migrate.kernel.sql import REPLICA, create_engine
from migrate.kernel.uow import set_role
from migrate.router.state import MONOLITH
from migrate.schema import upgrade
from migrate.sync.backfill import BackfillReport, Parity, backfill
from migrate.sync.parity_records import verify_and_record
from migrate.system import System

Progress = Callable[[str, int, int], None]


@dataclasses.dataclass(frozen=True)
class ExtractReport:
    extraction: Extraction
    backfill: BackfillReport
    parity: Parity


def extract(
    system: System, name: str, *, force: bool = False, progress: Progress | None = None
) -> ExtractReport:
    settings = system.settings
    context = system.manifest.context(name)
    _refuse_unless_safe(system, name)
    extraction = generate(system.manifest, name, settings.extracted_dir, force=force)

    service_url = settings.service_url(name)
    upgrade(service_url, extraction.migrations, system.manifest.path)
    service = create_engine(service_url)
    with service.begin() as db:
        set_role(db, name, REPLICA)

    state = system.state
    state.set_backend(name, system.service_url(name))
    state.register_routes(
        name,
        name,
        extraction.routes,
        actor="migrate extract",
        reason=f"{name} extracted; its service reads nothing yet",
    )

    if system.is_up():
        system.resources()

    monolith = create_engine(settings.monolith_url)
    copied = backfill(context, monolith, service, progress)
    if context.aggregates:
        settle_removals(context, service)
    found = verify_and_record(settings, context, monolith, service, "migrate extract")
    state.mark_synced(
        name, "migrate extract",
        f"{name}'s copy backfilled and in parity; sync keeps it in step",
    )
    return ExtractReport(extraction, copied, found)


def _refuse_unless_safe(system: System, name: str) -> None:
    """Extraction starts from a seeded monolith that writes the context."""
    if system.manifest.context(name).finished:
        raise AlreadyExtracted(
            f"{name} is finished: its service hosts it alone and the monolith "
            "holds no copy to extract again"
        )

    status = system.state.status().get(name)
    if status is not None and status.writer != MONOLITH:
        raise AlreadyExtracted(
            f"{name}'s service writes {name} now; extracting it again would leave "
            f"no writer. Run `migrate rollback {name}` first"
        )

    if status is not None and (
        status.read_weight or any(status.route_weights.values())
    ):
        # Extracting again rebuilds the service's database: reads it serves
        # now would find it half copied.
        weights = {"": status.read_weight, **status.route_weights}
        shifted = max(weights.values())
        raise AlreadyExtracted(
            f"{name}'s service serves up to {shifted} % of its reads; extracting "
            f"it again would rebuild the database they read. Run `migrate "
            f"shift {name} 0` first"
        )

    monolith = create_engine(system.settings.monolith_url)
    if not sa.inspect(monolith).has_table(f"{name}_outbox"):
        raise SystemNotRunning(
            f"the monolith's database ({system.settings.monolith_url}) has no "
            f"{name} tables yet; run `migrate seed` first"
        )
