"""The observability commands: `migrate traces` (list, `show`, `map`),
`migrate logs`, and `migrate metrics targets|grafana|rules`.

Thin commands over `migrate.observe.traces`, `.logreader`, `.targets`,
`.grafana` and `.rules`. Exit codes: 0 done; 1 nothing to read or list yet
(no store, no logs, no system running), or an unknown trace, process or
context, or a malformed trace id (one line on stderr names it); 2 bad
usage.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from migrate.errors import SystemNotRunning
from migrate.observe import logreader, traces
from migrate.settings import Settings

_LEVEL_COLOURS = {"DEBUG": "bright_black", "WARNING": "yellow", "ERROR": "red",
                  "CRITICAL": "red"}
# Fields every line has, or that a Lambda handler's lines repeat on each
# line; the rest are shown after the message.
_ENVELOPE = frozenset({
    "time", "timestamp", "level", "service", "logger", "message", "error",
    "location", "trace_id", "xray_trace_id", "cold_start", "function_name",
    "function_memory_size", "function_arn", "function_request_id",
})


def _echo_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, default=str))


def _ms(value: float | None) -> str:
    return "…" if value is None else f"{value:,.1f} ms"


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


# migrate traces -----------------------------------------------------------


@click.group("traces", invoke_without_command=True)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1),
              help="how many of the newest traces")
@click.option("--json", "as_json", is_flag=True, help="print them as JSON")
@click.pass_context
def traces_group(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List the recent traces the collector holds (`show` one, or `map` them)."""
    if ctx.invoked_subcommand is not None:
        return

    found = traces.recent(Settings.from_env().traces_path, limit)
    if as_json:
        _echo_json([t.as_dict() for t in found])
        return
    if not found:
        click.echo("The collector holds no trace yet.")
        return

    rows = [["started (UTC)", "trace", "request", "status", "duration",
             "segments", "flags", "services"]]
    for t in found:
        flags = [f for f, on in (("fault", t.fault), ("error", t.error),
                                 ("in progress", t.in_progress),
                                 ("linked", bool(t.links_to))) if on]
        rows.append([
            _when(t.start), t.trace_id, t.request,
            "" if t.status is None else str(t.status),
            _ms(t.duration_ms), str(t.segments), ",".join(flags) or "-",
            ", ".join(t.services),
        ])
    _columns(rows, right={3, 4, 5})


def _columns(rows: list[list[str]], right: Iterable[int] = ()) -> None:
    """Print rows as aligned columns, nothing cut; a free last column is
    left unpadded."""
    flush_right = set(right)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    last = len(widths) - 1
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in flush_right
            else cell if i == last else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        click.echo("  ".join(cells).rstrip())


@traces_group.command("show")
@click.argument("trace_id")
@click.option("--json", "as_json", is_flag=True, help="print the tree as JSON")
def show_command(trace_id: str, as_json: bool) -> None:
    """Show one trace as a tree, with each span's offset and duration."""
    found = traces.trace(Settings.from_env().traces_path, trace_id)
    if as_json:
        _echo_json(found.as_dict())
        return

    for line in _trace_lines(found):
        click.echo(line)
    if found.linked_from:
        click.echo("")
        click.echo(f"Linked from this trace ({len(found.linked_from)}):")
        for other in found.linked_from:
            click.echo("")
            for line in _trace_lines(other):
                click.echo(f"  {line}".rstrip())


def _trace_lines(found: traces.Trace) -> list[str]:
    s = found.summary
    status = f" -> {s.status}" if s.status is not None else ""
    lines = [
        f"Trace {s.trace_id}: {s.request}{status}, {_ms(s.duration_ms)}, "
        f"{s.segments} segment{'s' if s.segments != 1 else ''}",
        f"started {_when(s.start)} UTC; services {', '.join(s.services)}",
    ]
    for link in found.links:
        target = (
            f" ({link.target} of {link.service})" if link.target and link.service
            and link.service != link.target
            else f" ({link.target})" if link.target else " (not in the store)"
        )
        lines.append(f"links to trace {link.trace_id}{target}")
    lines += ["", f"{'offset':>10}  {'duration':>10}"]
    for root in found.roots:
        lines += _span_lines(root, s.start, "", "", found)
    return lines


def _span_lines(span: traces.Span, start: float, lead: str, branch: str,
                found: traces.Trace) -> list[str]:
    offset = f"{(span.start - start) * 1000:,.1f} ms"
    duration = "in progress" if span.end is None else _ms(span.duration_ms)
    lines = [f"{offset:>10}  {duration:>10}  {lead}{branch}{_describe(span, found)}"]
    if span.cause:
        pad = " " * 24 + lead + ("   " if branch else "")
        lines.append(f"{pad}! {span.cause}")
    below = lead + ("   " if branch == "└─ " else "│  " if branch else "")
    for index, child in enumerate(span.children):
        last = index == len(span.children) - 1
        lines += _span_lines(child, start, below, "└─ " if last else "├─ ", found)
    return lines


def _describe(span: traces.Span, found: traces.Trace) -> str:
    parts = [span.name]
    if span.namespace:
        parts.append(f"[{span.namespace}]")
    if span.function:
        parts.append("(function)")
    if span.request:
        parts.append(span.request)
    if span.status is not None:
        parts.append(str(span.status))
    if span.sql is not None:
        parts.append(traces.short_sql(span.sql))
    if span.operation:
        parts.append(span.operation + (f" {span.resource}" if span.resource else ""))
    parts += [f"{k}={v}" for k, v in span.annotations.items()]
    parts += [flag for flag in ("fault", "error", "throttle") if getattr(span, flag)]
    for link in found.links:
        if link.from_span == span.id:
            parts.append(f"links to {link.trace_id}")
    return "  ".join(parts)


@traces_group.command("map")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1),
              help="how many of the newest traces to map")
@click.option("--json", "as_json", is_flag=True, help="print the map as JSON")
def map_command(limit: int, as_json: bool) -> None:
    """Who calls whom: calls, errors, faults and latency per edge."""
    found = traces.service_map(Settings.from_env().traces_path, limit)
    if as_json:
        _echo_json(found.as_dict())
        return
    if not found.edges:
        click.echo("The collector holds no trace yet.")
        return

    click.echo(f"Service map of the newest {found.traces} traces "
               "(--> a call, ..> a link to a function's own trace)")
    click.echo("")
    rows = [["from", "", "to", "calls", "errors", "faults", "mean", "p99"]]
    for edge in found.edges:
        rows.append([
            edge.source, "-->" if edge.kind == "call" else "..>", edge.target,
            str(edge.calls), str(edge.errors), str(edge.faults),
            _ms(edge.mean_ms), _ms(edge.p99_ms),
        ])
    _columns(rows, right={3, 4, 5, 6, 7})


# migrate logs -------------------------------------------------------------


class _Since(click.ParamType):
    name = "since"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            return logreader.parse_since(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


class _Level(click.ParamType):
    name = "level"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        try:
            return logreader.parse_level(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


@click.command("logs")
@click.option("-f", "--follow", is_flag=True, help="keep printing new lines")
@click.option("--service", "services", multiple=True, metavar="NAME",
              help="only this process (repeatable; patterns such as billing-*)")
@click.option("--level", type=_Level(), help="only this level and above")
@click.option("--trace", "trace_id", metavar="ID", help="only lines of this trace")
@click.option("--context", help="only lines of this bounded context")
@click.option("--grep", "text", metavar="TEXT",
              help="only lines holding TEXT (any case)")
@click.option("--since", type=_Since(), help="only lines since: 10m, 2h, 1d or a time")
@click.option("--lines", "-n", default=100, show_default=True,
              type=click.IntRange(0), help="the last N lines first (0: all)")
@click.option("--json", "as_json", is_flag=True, help="JSON lines, one per entry")
def logs_command(follow: bool, services: tuple[str, ...], level: str | None,
                 trace_id: str | None, context: str | None, text: str | None,
                 since: float | None, lines: int, as_json: bool) -> None:
    """Every process's log, merged by time and filtered."""
    settings = Settings.from_env()
    # A filter that can match nothing is refused, as an unknown --service
    # is, rather than answered with silence.
    if trace_id is not None:
        traces.check_trace_id(trace_id)
    if context is not None:
        from migrate.manifest import load as load_manifest

        load_manifest(settings.manifest_path).context(context)

    folder = settings.logs_dir
    width = max([len(p.stem) for p in folder.glob("*.log")] + [12])
    filters = logreader.Filters(services, level, trace_id, context, text, since)
    entries: Iterable[logreader.Entry] = (
        logreader.follow(folder, filters, lines or None) if follow
        else logreader.read(folder, filters, lines or None)
    )
    try:
        for entry in entries:
            click.echo(json.dumps(entry.as_dict(), default=str) if as_json
                       else _log_line(entry, width))
            if follow:
                sys.stdout.flush()
    except KeyboardInterrupt:
        return
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as `tail` does.
        sys.stdout = open("/dev/null", "w")  # noqa: SIM115


def _log_line(entry: logreader.Entry, width: int) -> str:
    level = entry.level or "-"
    shown = click.style(f"{level:<7}", fg=_LEVEL_COLOURS.get(level))
    head = f"{entry.iso_time()} {entry.process:<{width}} {shown}"
    if entry.fields is None:
        return f"{head} {entry.line}"

    extra = [f"{k}={v}" for k, v in entry.fields.items()
             if k not in _ENVELOPE and v not in (None, "")]
    if entry.service and entry.service != entry.process:
        extra.insert(0, f"service={entry.service}")
    if entry.trace_id:
        extra.append(f"trace={entry.trace_id}")
    first, *rest = entry.message.rstrip().splitlines() or [""]
    line = f"{head} {first}"
    if extra:
        line += "  " + " ".join(extra)
    if rest:
        line += "\n" + "\n".join(f"    {row}" for row in rest)
    error = entry.fields.get("error")
    if error:
        line += "\n" + "\n".join(f"    {row}" for row in str(error).splitlines())
    return line


# migrate metrics ---------------------------------------------------------


def _system():  # type: ignore[no-untyped-def]
    from migrate.system import System

    return System(Settings.from_env())


def _write_or_print(text: str, out: Path | None, what: str) -> None:
    if out is None:
        click.echo(text, nl=not text.endswith("\n"))
        return

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    click.echo(f"wrote {what} to {out}")


@click.group("metrics")
def metrics() -> None:
    """Prometheus metrics of the running system: targets, dashboard, rules."""


@metrics.command("targets")
@click.option("--json", "as_json", is_flag=True, help="print the targets as JSON")
def targets_command(as_json: bool) -> None:
    """List the metrics endpoint of every process running now.

    `migrate up` also writes them, with a prometheus.yml that scrapes them,
    to <home>/prometheus/."""
    from migrate.observe.targets import scrape_targets

    system = _system()
    found = scrape_targets(system)
    if not found:
        raise SystemNotRunning(
            f"no process of the system in {system.settings.home} is running; "
            "start it with `migrate up`"
        )

    folder = system.settings.prometheus_dir
    if as_json:
        click.echo(json.dumps({
            "targets": [t.as_json() for t in found],
            "prometheus_config": str(folder / "prometheus.yml"),
        }, indent=2))
        return

    width = max(len(t.process) for t in found)
    for target in found:
        note = "  (admin token)" if target.token else ""
        click.echo(f"{target.process:<{width}}  {target.url}{note}")
    click.echo(f"Prometheus: prometheus --config.file={folder / 'prometheus.yml'}")


@metrics.command("grafana")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="write the dashboard here instead of printing it")
def grafana_command(out: Path | None) -> None:
    """The migration dashboard as Grafana's import JSON."""
    from migrate.observe.grafana import dashboard

    _write_or_print(json.dumps(dashboard(), indent=2) + "\n", out,
                    "the migration dashboard")


@metrics.command("rules")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="write the rules here instead of printing them")
def rules_command(out: Path | None) -> None:
    """Prometheus recording and alerting rules for the SLOs the router
    enforces (set them with `migrate slo`)."""
    from migrate.observe import rules
    from migrate.router.state import StateStore

    settings = Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    found = rules.slo_rules(StateStore(settings.state_path).snapshot())
    count = sum(len(group["rules"]) for group in found["groups"])
    _write_or_print(rules.render(found), out, f"{count} rules")


commands = [traces_group, logs_command, metrics]
