"""The `migrate` command: thin commands over the kit's library calls.

Exit codes: 0 success; 1 the operation failed, found a problem or refused
a value (the one line on stderr says which); 2 bad configuration, or a
usage error click catches before the command runs. With --json, a failure
is also one JSON object on stdout: {"error": stable code, "message",
"exit_code"}, the codes the admin API answers with where they correspond.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from migrate.errors import MigrateError, NotExtracted
from migrate.router.commands import ledger_text
from migrate.settings import Settings

# Piped output is read whole, by a person later or by grep: tables there get
# room for every column (a terminal's own width, where there is one).
WIDTH_WHEN_PIPED = 240
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else WIDTH_WHEN_PIPED)
err = Console(stderr=True, soft_wrap=True)

# Modules that add commands to `migrate`: each exposes `commands`, a list of
# click commands. Listed here so `migrate --help` shows them all.
COMMAND_MODULES: tuple[str, ...] = (
    "migrate.check.commands",
    "migrate.deploy.commands",
    "migrate.contracts.commands",
    "migrate.router.commands",
    "migrate.observe.commands",
)


def _system():  # type: ignore[no-untyped-def]
    from migrate.system import System

    return System(Settings.from_env())


def _emit(as_json: bool, payload: Any, human: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(payload, indent=2, default=str))
    else:
        human()


class _Steps:
    """Progress for people, on stderr: a bar per step at a terminal; where
    stderr is a file or a pipe (CI, `2> log`), a line when a step ends and
    one every few seconds of a long step. Silent under --json."""

    PLAIN_EVERY_SECONDS = 5.0

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bars = err.is_terminal
        self._bar = Progress(
            TextColumn("{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=True,
        )
        self._tasks: dict[str, Any] = {}
        self._said: dict[str, float] = {}
        self._finished: set[str] = set()

    def __enter__(self) -> _Steps:
        if not self.quiet and self.bars:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.quiet and self.bars:
            self._bar.stop()

    def count(self, step: str, done: int, total: int) -> None:
        if self.quiet:
            return
        if not self.bars:
            self._plain(step, done, total)
            return
        if step not in self._tasks:
            self._tasks[step] = self._bar.add_task(step, total=total)
        self._bar.update(self._tasks[step], completed=done, total=total)

    def _plain(self, step: str, done: int, total: int) -> None:
        if step in self._finished:
            return
        now = time.monotonic()
        if done >= total:
            self._finished.add(step)
        elif now - self._said.setdefault(step, now) < self.PLAIN_EVERY_SECONDS:
            return
        self._said[step] = now
        err.print(f"{step} {done:,}/{total:,}")

    def say(self, line: str) -> None:
        if not self.quiet:
            err.print(f"[dim]{line}[/dim]")


@click.group()
def main() -> None:
    """Move a monolith to services one bounded context at a time."""


@main.command()
@click.option(
    "--northwind",
    "dump",
    type=click.Path(path_type=Path),
    help="a Northwind PostgreSQL dump to load",
)
@click.option("--orders", type=int, help="generate a synthetic data set of N orders")
@click.option("--reset", is_flag=True, help="empty the monolith's database first")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def seed(dump: Path | None, orders: int | None, reset: bool, as_json: bool) -> None:
    """Load the monolith's database, through its contexts' own handlers.

    `--orders N` runs the seeder the manifest names with N (Northwind's makes
    N orders); `--northwind PATH` loads a Northwind dump into Northwind."""
    from migrate.manifest import load as load_manifest
    from migrate.seed.errors import SeedError
    from migrate.seed.load import seed as load
    from migrate.seed.northwind import read_dump

    if (dump is None) == (orders is None):
        raise click.UsageError("pass exactly one of --northwind PATH and --orders N")

    settings = Settings.from_env()
    manifest = load_manifest(settings.manifest_path)
    if orders is not None and not 1 <= orders <= MAX_SEED_ORDERS:
        raise SeedError(
            f"--orders {orders}: the number of orders runs 1-{MAX_SEED_ORDERS:,}"
        )

    if dump is not None and manifest.name != "northwind":
        raise SeedError(
            f"--northwind loads a Northwind dump, and {manifest.path} describes "
            f"{manifest.name!r}; seed it with --orders N"
        )

    _refuse_to_seed_over(settings, manifest, reset)
    if dump is not None:
        data = read_dump(dump)

        def run(host: Any, progress: Callable) -> Any:
            return load(host, data, progress)
    else:
        seeder = manifest.seeder()

        def run(host: Any, progress: Callable) -> Any:
            return seeder(host, orders, progress)

    report = _seed_database(settings, manifest, reset, as_json, run)
    # The system is the user's now: a later demo must not take it for its own.
    settings.demo_mark.unlink(missing_ok=True)
    payload = dataclasses.asdict(report)

    def human() -> None:
        loaded = ", ".join(f"{n} {what}" for what, n in report.loaded.items())
        out.print(f"Seeded {settings.monolith_url}: {loaded}.")
        invoices = getattr(report, "invoices", None)
        if invoices is not None:
            out.print(f"Issued {invoices} invoices.")
        marked = getattr(report, "events_marked_published", None)
        if marked is not None:
            out.print(
                f"{marked} events recorded as already published (no side effect "
                "runs for history)."
            )
        skipped = getattr(report, "skipped", None)
        if skipped:
            listed = ", ".join(f"{t} ({n} rows)" for t, n in skipped.items())
            out.print(f"Skipped what no context owns: {listed}.")

    _emit(as_json, payload, human)


MAX_SEED_ORDERS = 5_000_000


def _refuse_to_seed_over(settings: Settings, manifest: Any, reset: bool) -> None:
    """Say no before reading or generating anything that would be thrown away."""
    import sqlalchemy as sa

    from migrate.kernel.sql import create_engine
    from migrate.seed.errors import SeedError
    from migrate.sync.backfill import data_tables
    from migrate.system import System

    running = System(settings, manifest).supervisor.running()
    if reset and running:
        raise SeedError(
            f"the system is up ({', '.join(running)}); `migrate down` before "
            "resetting its database"
        )

    url = settings.monolith_url
    if reset or (
        url.startswith("sqlite:///")
        and not Path(url.removeprefix("sqlite:///")).exists()
    ):
        return

    engine = create_engine(settings.monolith_url)
    present = set(sa.inspect(engine).get_table_names())
    for context in manifest.hosted.values():
        for table in data_tables(context):
            if table.name not in present:
                continue

            with engine.connect() as db:
                held = db.execute(
                    sa.select(sa.func.count()).select_from(table)
                ).scalar()
            if held:
                raise SeedError(
                    f"{settings.monolith_url} already holds {held} rows of "
                    f"{table.name}; seed an empty database (pass --reset to empty "
                    "this one)"
                )


def _seed_database(
    settings: Settings, manifest: Any, reset: bool, quiet: bool, run: Callable
) -> Any:
    from migrate.schema import upgrade

    settings.home.mkdir(parents=True, exist_ok=True)
    if reset:
        _drop_everything(settings.monolith_url)
    upgrade(settings.monolith_url, manifest_path=manifest.path)
    host = manifest.host_class()(settings.monolith_url, manifest)
    with _Steps(quiet) as steps:
        return run(host, steps.count)


def _drop_everything(url: str) -> None:
    import sqlalchemy as sa

    from migrate.kernel.sql import create_engine

    engine = create_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)


@main.command()
@click.option("--json", "as_json", is_flag=True)
def up(as_json: bool) -> None:
    """Start everything side by side: emulator, monolith, router, services."""
    system = _system()
    with _Steps(as_json) as steps:
        started = system.up(steps.say)
    running = system.supervisor.running()
    payload = {
        "started": started,
        "running": running,
        "router": system.settings.router_url,
    }
    _emit(
        as_json,
        payload,
        lambda: out.print(
            f"Up: {len(running)} processes; the router listens on "
            f"{system.settings.router_url}."
        ),
    )


@main.command()
@click.option("--json", "as_json", is_flag=True)
def down(as_json: bool) -> None:
    """Stop every process `migrate up` started."""
    stopped = _system().down()
    _emit(
        as_json,
        {"stopped": stopped},
        lambda: out.print(
            f"Stopped {len(stopped)} process{'' if len(stopped) == 1 else 'es'}."
            if stopped
            else "Nothing was running."
        ),
    )


@main.command()
@click.argument("context")
@click.option("--force", is_flag=True, help="overwrite an existing extraction")
@click.option("--json", "as_json", is_flag=True)
def extract(context: str, force: bool, as_json: bool) -> None:
    """Generate CONTEXT's service with its own database, backfill and check it."""
    from migrate.extract.run import extract as run

    system = _system()
    with _Steps(as_json) as steps:
        report = run(system, context, force=force, progress=steps.count)
    if system.is_up():
        system.up()
    payload = {
        "context": context,
        "folder": str(report.extraction.folder),
        "routes": report.extraction.routes,
        "copied": report.backfill.copied,
        "source_position": report.backfill.source_position,
        "counts": report.parity.counts,
        "totals": report.parity.totals,
    }

    def human() -> None:
        out.print(
            f"Extracted {context} into {report.extraction.folder}; "
            f"its {len(report.extraction.routes)} routes read from the "
            "monolith (weight 0)."
        )
        for table, (source, copy) in report.parity.counts.items():
            out.print(
                f"  {table:<16} {source:>8} rows in the monolith, {copy:>8} "
                "in the service"
            )
        for column, (source, copy) in report.parity.totals.items():
            out.print(f"  sum {column:<26} {source / 100:>14,.2f} = {copy / 100:,.2f}")

    _emit(as_json, payload, human)


@main.command()
@click.argument("context")
@click.option("--json", "as_json", is_flag=True)
def backfill(context: str, as_json: bool) -> None:
    """Copy CONTEXT's rows into its service again, resuming an interrupted copy."""
    from migrate.kernel.sql import create_engine
    from migrate.sync.backfill import backfill as copy
    from migrate.sync.parity_records import verify_and_record

    system = _system()
    settings = system.settings
    owned = system.manifest.context(context)
    if not (settings.extracted_dir / context).exists():
        raise NotExtracted(
            f"{context} is not extracted; run `migrate extract {context}`"
        )

    source = create_engine(settings.monolith_url)
    target = create_engine(settings.service_url(context))
    with _Steps(as_json) as steps:
        report = copy(owned, source, target, steps.count)
    if owned.aggregates:
        from migrate.hosts.replica import settle_removals

        settle_removals(owned, target)
    parity = verify_and_record(settings, owned, source, target, "migrate backfill")
    system.state.mark_synced(
        context, "migrate backfill", f"{context}'s copy backfilled and in parity"
    )
    payload = {
        "context": context,
        "copied": report.copied,
        "source_position": report.source_position,
        "counts": parity.counts,
    }
    _emit(
        as_json,
        payload,
        lambda: out.print(
            f"Copied {sum(report.copied.values())} rows of {context}; the copy is in "
            "parity with the monolith."
        ),
    )


@main.command()
@click.argument("context")
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="seconds to wait for the copy to catch up with the recorded position",
)
@click.option("--json", "as_json", is_flag=True)
def verify(context: str, timeout: float, as_json: bool) -> None:
    """Compare CONTEXT's copy in its service with the monolith's tables, as
    of the writer's outbox position recorded when it starts."""
    from migrate.kernel.sql import create_engine
    from migrate.router.state import MONOLITH
    from migrate.sync.compare import SERVICE, compare
    from migrate.sync.parity_records import record_parity

    system = _system()
    settings = system.settings
    owned = system.manifest.context(context)
    if not (settings.extracted_dir / context).exists():
        raise NotExtracted(f"{context} is not extracted; nothing to verify yet")

    status = system.state.status().get(context)
    writer = SERVICE if status is not None and status.writer != MONOLITH else MONOLITH
    with _Steps(as_json) as steps:
        compared = compare(
            owned,
            create_engine(settings.monolith_url),
            create_engine(settings.service_url(context)),
            writer=writer,
            timeout=timeout,
            progress=steps.say,
        )
    found = compared.parity
    record_parity(settings, context, found, "migrate verify")
    payload = {
        "context": context,
        "as_of": {"outbox": compared.writer, "position": compared.position},
        "waited_seconds": round(compared.waited_seconds, 3),
        "rechecked_chunks": compared.rechecked,
        "settled_chunks": compared.settled,
        "counts": found.counts,
        "totals": found.totals,
        "chunks": found.chunks,
        "differences": found.differences,
        "first_rows": [dataclasses.asdict(d) for d in found.first_rows],
    }

    def human() -> None:
        at = f"as of the {compared.writer}'s outbox position {compared.position}"
        settled = (
            f"; {compared.settled} chunks that changed after it agree once the "
            "copy caught up"
            if compared.settled
            else ""
        )
        if not found.differences:
            checked = sum(total for _, total in found.chunks.values())
            out.print(
                f"{context} is in parity {at}: counts, totals and {checked} "
                f"chunk checksums agree{settled}."
            )
            return
        out.print(f"{context} differs {at}{settled}:")
        out.print("\n".join(found.differences))
        for row in found.first_rows:
            out.print(
                f"  {row.table} {row.key}:\n    monolith {row.monolith}\n"
                f"    service  {row.service}"
            )

    _emit(as_json, payload, human)
    if found.differences:
        sys.exit(1)


# A negative weight is a weight to refuse with its rule, not an unknown option.
@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("context")
@click.argument("weight", required=False, type=str)
@click.option("--writes", is_flag=True, help="move CONTEXT's writes to its service")
@click.option("--steps", help="walk the reads through these weights: 1,5,25,50,100")
@click.option("--every", help="time at each step, e.g. 5m, 30s (default 5m)")
@click.option("--max-diff-rate",
              help="share of shadowed requests that may differ, e.g. 1% (default)")
@click.option("--patience",
              help="how long a step may wait for traffic to judge (default 2 x every)")
@click.option("--reason", default="", callback=ledger_text,
              help="why, for the ledger")
@click.option("--json", "as_json", is_flag=True)
def shift(
    context: str, weight: str | None, writes: bool, steps: str | None,
    every: str | None, max_diff_rate: str | None, patience: str | None,
    reason: str, as_json: bool,
) -> None:
    """Send WEIGHT % of CONTEXT's reads to its service, walk them through
    --steps, or move its writes.

    With --steps, each step waits --every, and before each the router's SLO
    verdict and the gates are asked (contracts verified, shadow differences
    under --max-diff-rate, data in parity); the first refusal stops the
    shift where it is (exit 1). --steps needs CONTEXT's SLO (`migrate slo
    CONTEXT`) and only goes up. `migrate rollout pause|resume|stop` act on
    it; an SLO breach rolls it back to 0 % at once, as WEIGHT 0 does."""
    if weight is not None and weight.startswith("--"):
        raise click.UsageError(f"no such option: {weight}")
    if sum((writes, weight is not None, steps is not None)) != 1:
        raise click.UsageError("pass one of a WEIGHT (0-100), --steps or --writes")
    if steps is None and (every, max_diff_rate, patience) != (None, None, None):
        raise click.UsageError(
            "--every, --max-diff-rate and --patience go with --steps"
        )

    system = _system()
    if steps is not None:
        _shift_in_steps(system, context, steps, every or "5m", max_diff_rate or "1%",
                        patience, reason, as_json)
        return

    if writes:
        from migrate.sync.flip import move_writes

        with _Steps(as_json) as progress:
            report = move_writes(system, context, progress=progress.say)
        _emit(
            as_json,
            dataclasses.asdict(report),
            lambda: out.print(
                f"{context}'s writes moved to its service in "
                f"{report.waited_seconds:.1f} s "
                f"({report.replayed} kept events replayed)."
            ),
        )
        return

    from migrate.router.errors import InvalidWeight
    from migrate.router.steering import raise_gate, shift_reads

    # Refused as the admin API refuses it (invalid_weight), not as a usage
    # error: the value is the operator's, the command line is fine.
    # ASCII digits only: int() would also take " 10" and a full-width "０".
    text = str(weight)
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidWeight(context, weight)
    percent = int(text)

    if not 0 <= percent <= 100:
        raise InvalidWeight(context, percent)

    # Raising a weight needs the contracts' yes and a copy last found in
    # parity; lowering never waits.
    shift_reads(system.state, context, percent, "migrate shift", reason or "operator",
                gate=raise_gate(system.settings))
    _router_reads_the_store(system.state.path)
    _emit(
        as_json,
        {"context": context, "read_weight": percent},
        lambda: out.print(f"{context}: {percent} % of reads now go to its service."),
    )


def _router_reads_the_store(state_path: str) -> None:
    """Have a running router route by the change just written, before the
    command says it is done: left alone, it finds it at its next poll of
    the store, a fifth of a second later. Without a router running there
    is nobody to tell; one that starts reads the store."""
    from migrate.router.admin import AdminClient
    from migrate.router.errors import AdminUnavailable

    try:
        AdminClient.for_state(state_path).post("/admin/refresh")
    except AdminUnavailable:
        pass  # no router running: the store holds the change for one to read


def _shift_in_steps(
    system: Any, context: str, steps: str, every: str, max_diff_rate: str,
    patience: str | None, reason: str, as_json: bool,
) -> None:
    from migrate.router.commands import parse_rate
    from migrate.router.rollout import (
        Interrupted,
        ended_by_signals,
        parse_duration,
        parse_steps,
    )
    from migrate.shift import shift_reads

    weights = parse_steps(steps)
    interval = parse_duration(every)
    limit = parse_rate(max_diff_rate, "max diff rate")
    waiting = parse_duration(patience) if patience is not None else None
    system.manifest.context(context)
    try:
        with _Steps(as_json) as progress, ended_by_signals():
            report = shift_reads(
                system, context, weights, interval, max_diff_rate=limit,
                patience=waiting, reason=reason or "operator",
                progress=progress.say,
            )
    except Interrupted as interrupted:
        # The walk has recorded its rollout as stopped; say where it left
        # the reads, and exit as a process ended by that signal would.
        at = system.state.status()[context].read_weight
        _fail(f"rollout of {context} stopped with its reads at {at} %: "
              f"{interrupted}", 128 + interrupted.signum, "interrupted")
    payload = {
        "context": context,
        "steps": list(report.steps),
        "read_weight": report.weight,
        "finished": report.finished,
        "reason": report.reason,
        "events": list(report.events),
    }
    stopped = (f"rollout of {context} stopped with its reads at "
               f"{report.weight} %: {report.reason}")
    if not report.finished:
        # A failure's object, as every command's, with the walk's report.
        payload = {"error": "rollout_stopped", "message": stopped, "exit_code": 1,
                   **payload}
    if as_json or report.finished:
        _emit(as_json, payload, lambda: out.print(report.text()))
    if not report.finished:
        click.echo(f"error: {stopped}", err=True)
        sys.exit(1)


@main.command()
@click.argument("context")
@click.option("--reason", default="", callback=ledger_text,
              help="why, for the ledger")
@click.option("--json", "as_json", is_flag=True)
def rollback(context: str, reason: str, as_json: bool) -> None:
    """Give CONTEXT back to the monolith: its writes (fenced, nothing lost),
    then all its reads; its rollout is marked rolled back, shadowing off."""
    from migrate.sync.flip import roll_back

    system = _system()
    system.manifest.context(context)
    with _Steps(as_json) as steps:
        report = roll_back(system, context, reason=reason, progress=steps.say)
    _router_reads_the_store(system.state.path)
    moved = report.writes_moved
    payload = {
        "context": context,
        "writer": "monolith",
        "read_weight": 0,
        "read_weight_was": report.read_weight_was,
        "shadow_was": report.shadow_was,
        "rollout": report.rollout,
        "flip": dataclasses.asdict(moved) if moved else None,
    }
    _emit(
        as_json,
        payload,
        lambda: out.print(
            f"{context} is back in the monolith: it writes, and serves every read"
            + (
                f" (writes moved back in {moved.waited_seconds:.1f} s)."
                if moved
                else "."
            )
        ),
    )


@main.command()
@click.argument("context")
@click.option("--json", "as_json", is_flag=True)
def finish(context: str, as_json: bool) -> None:
    """Stop hosting CONTEXT in the monolith and move its code beside its service.

    Refused unless CONTEXT's writes moved and its sync lag is zero."""
    from migrate.extract.finish import finish as run

    system = _system()
    with _Steps(as_json) as steps:
        report = run(system, context, progress=steps.say)
    moved = report.relocation
    payload = {
        "context": context,
        "phase": "finished",
        "moved_from": str(moved.source),
        "moved_to": str(moved.target),
        "package": moved.package,
        "rewritten": [str(p) for p in moved.rewritten],
        "staged_in_git": moved.git,
        "retired_queues": list(report.retired_queues),
        "restarted": list(report.restarted),
    }
    _emit(
        as_json,
        payload,
        lambda: out.print(
            f"{context} is finished: its service alone hosts it. Its package is "
            f"now {moved.package!r} in {moved.target} ({len(moved.rewritten)} files "
            "rewritten" + (", staged with git" if moved.git else "") + ")."
        ),
    )


@main.command()
@click.argument("first")
@click.argument("context", required=False)
@click.option("--json", "as_json", is_flag=True)
def dlq(first: str, context: str | None, as_json: bool) -> None:
    """List CONTEXT's dead letters (`dlq CONTEXT`) or send them back
    (`dlq redrive CONTEXT`)."""
    from migrate.messaging import deadletters
    from migrate.messaging.clients import sqs_client

    if first == "redrive" and context is None:
        raise click.UsageError("name the context: migrate dlq redrive CONTEXT")
    if first != "redrive" and context is not None:
        raise click.UsageError(f"unknown action {first!r}; the action is 'redrive'")

    name = context or first
    system = _system()
    system.manifest.context(name)
    resources = system.resources()
    sqs = sqs_client(system.settings.endpoint_url)
    if first == "redrive":
        moved = {
            queue: deadletters.redrive(
                sqs, resources.dead_letter_url(queue), resources.queue_url(queue)
            )
            for queue in system.queues_of(name)
        }
        _emit(
            as_json,
            {"context": name, "redriven": moved},
            lambda: out.print(
                f"Sent {sum(moved.values())} dead letters of {name} back "
                "to their queues."
            ),
        )
        return

    letters = [
        letter
        for queue in system.queues_of(name)
        for letter in deadletters.peek(sqs, queue, resources.dead_letter_url(queue))
    ]

    def human() -> None:
        if not letters:
            out.print(f"No dead letters for {name}.")
            return
        table = Table("queue", "event", "aggregate", "receives", "reason")
        for d in letters:
            table.add_row(
                d.queue,
                f"{d.event_type} {d.event_id}",
                d.aggregate_id or "",
                str(d.receive_count),
                d.reason,
            )
        out.print(table)

    _emit(as_json, [dataclasses.asdict(d) for d in letters], human)


@main.command()
@click.option("--json", "as_json", is_flag=True)
def status(as_json: bool) -> None:
    """Show each extracted context's routing: weight, writer, routes, and the
    sync lag each way (events not yet applied, age of the oldest in s)."""
    from migrate.sync.lag import lag_by_direction

    system = _system()
    # A rollout whose walker was killed outright would read as running
    # forever; status is where an operator looks, so it is ended here.
    system.state.end_stale_rollouts("migrate status")
    contexts = system.state.status()
    lags = {name: lag_by_direction(system, name) for name in contexts}
    payload = {
        name: {
            "phase": s.phase,
            "service": s.service,
            "read_weight": s.read_weight,
            "route_weights": dict(s.route_weights),
            "keyless_side": s.keyless_side,
            "writer": s.writer,
            "writes_held": s.writes_held,
            "sync_lag": lags[name],
            "routes": [f"{r.method} {r.rule}" for r in s.routes],
            "shadow": s.shadow.as_json(),
            "slo": dataclasses.asdict(s.slo) if s.slo else None,
            "rollout": _rollout_json(s.rollout) if s.rollout else None,
        }
        for name, s in contexts.items()
    }
    payload_all = {"contexts": payload, "processes": system.supervisor.running()}

    def human() -> None:
        table = Table("context", "phase", "reads to service", "writer", "sync lag",
                      "routes", "shadow, SLO, rollout")
        for name, s in contexts.items():
            lag = lags[name]
            table.add_row(
                name,
                s.phase,
                "\n".join([f"{s.read_weight} %", *(
                    f"{route}: {weight} %" for route, weight in s.route_weights.items()
                )]),
                s.writer,
                "\n".join(
                    f"to {side} {lag[f'to_{side}']['events']} events, "
                    f"{lag[f'to_{side}']['seconds']:.1f} s"
                    for side in ("service", "monolith")
                ),
                "\n".join(f"{r.method} {r.rule}" for r in s.routes),
                "\n".join(_guards(s)),
            )
        out.print(table if contexts else "No context is extracted yet.")

    _emit(as_json, payload_all, human)


def _rollout_json(rollout: Any) -> dict[str, Any]:
    # `step` counts from 1 as the table does (0 before the first step), out
    # of the weights in `steps`; the store keeps an index.
    return {**dataclasses.asdict(rollout), "step": rollout.step + 1}


def _guards(status: Any) -> list[str]:
    """A context's shadow, SLO and rollout, a line each, for people."""
    lines = [f"shadow {status.shadow.text()}",
             f"SLO {status.slo.text() if status.slo else 'none'}"]
    rollout = status.rollout
    if rollout is not None:
        # The reads' weight itself: steps passed over because the reads
        # were already past them are not where the reads are.
        at = status.read_weight
        lines.append(f"rollout {rollout.state} at {at} % (step {rollout.step + 1} "
                     f"of {len(rollout.steps)}): {rollout.reason}")
    return lines


@main.command()
@click.argument("context")
@click.option("--json", "as_json", is_flag=True)
def history(context: str, as_json: bool) -> None:
    """Show the ledger of CONTEXT's routing changes, its phases among them."""
    state = _system().state
    entries = state.history(context)
    phase = state.phase(context)
    payload = [dataclasses.asdict(e) for e in entries]

    def human() -> None:
        table = Table("at", "who", "what", "from", "to", "why",
                      title=f"{context}: phase {phase}")
        for e in entries:
            table.add_row(
                e.at, e.actor, e.what, e.before or "", e.after or "", e.reason
            )
        out.print(table)

    _emit(as_json, payload, human)


@main.command()
@click.option(
    "--orders", default=120, show_default=True, help="size of the synthetic data set"
)
@click.option(
    "--northwind",
    "dump",
    type=click.Path(path_type=Path),
    help="use a Northwind dump instead of synthetic data",
)
@click.option(
    "--seconds",
    default=4.0,
    show_default=True,
    envvar="MIGRATE_DEMO_SECONDS",
    help="traffic at each step of the shift",
)
@click.option("--json", "as_json", is_flag=True)
def demo(orders: int, dump: Path | None, seconds: float, as_json: bool) -> None:
    """The whole story: seed, up, extract billing, shift reads, move writes."""
    from migrate.demo import run

    system = _system()
    with _Steps(as_json) as steps:
        report = run(system, orders=orders, dump=dump, seconds=seconds, say=steps.say)
    _emit(
        as_json,
        {**dataclasses.asdict(report), "ok": report.ok},
        lambda: out.print(report.text()),
    )
    if not report.ok:
        click.echo(
            f"error: the demo lost or failed something: {report.failed} failed "
            f"requests, uninvoiced orders {report.uninvoiced}, {report.emails} "
            f"e-mails for {report.orders_placed} orders",
            err=True,
        )
        sys.exit(1)


def _register_commands() -> None:
    import importlib

    for module in COMMAND_MODULES:
        for command in importlib.import_module(module).commands:
            main.add_command(command)


def run() -> None:
    _register_commands()
    try:
        main.main(standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        _say_json("usage_error", error.format_message(), 2)
        sys.exit(2)
    except MigrateError as error:
        _fail(str(error), error.exit_code, error_code(error))
    except OSError as error:
        # A folder that cannot be made, a port that cannot be bound: the
        # operating system's own words name the path or the address.
        _fail(str(error), 1, "os_error")


def error_code(error: Exception) -> str:
    """The stable code `--json` reports for an error: the admin API's code
    where it answers the same error (gate_refused, unknown_context), else
    the error's name in snake case (GateRefused would be gate_refused).
    The router's catch-all `refused` is left to the API: the CLI can name
    the error."""
    from migrate.router.errors import REFUSALS, RouterError

    for kind, _, code in REFUSALS:
        if kind is not RouterError and isinstance(error, kind):
            return code
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


def _fail(message: str, exit_code: int, code: str) -> NoReturn:
    """One line on stderr; with --json, the same as a JSON object on stdout."""
    click.echo(f"error: {message}", err=True)
    _say_json(code, message, exit_code)
    sys.exit(exit_code)


def _say_json(code: str, message: str, exit_code: int) -> None:
    if "--json" in sys.argv:
        click.echo(json.dumps({"error": code, "message": message,
                               "exit_code": exit_code}))


if __name__ == "__main__":
    run()
