"""`migrate plan <context>`: what extracting one context will cut.

Everything that today crosses the context's edge inside one process and one
database, and will cross a network after extraction: who calls its API and
whose API it calls (from the import graph, file:line, and from the ports
named after other contexts, which the host answers with their APIs), the
ports its host wires, the events it publishes (and who consumes them) and consumes, its
tables with their row counts, its routes and side effects, and the
violations that block a clean cut. Row counts come from the monolith's
database when it exists; the plan never creates one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from migrate.check.code import Edge
from migrate.check.layout import Layout
from migrate.check.report import HOST, NO_CONTEXT, Violation
from migrate.check.run import inspect
from migrate.manifest import load

# A call through a port of the caller, which the host answers with the
# provider's API.
PORT = "port"

@dataclasses.dataclass
class Plan:
    context: str
    package: str
    routes: list[dict[str, str]]
    inbound: list[dict[str, Any]]
    outbound: list[dict[str, Any]]
    ports: list[str]
    published: list[dict[str, Any]]
    consumed: list[dict[str, Any]]
    tables: list[dict[str, Any]]
    side_effects: list[dict[str, str]]
    blocking: list[Violation]
    database: str | None
    notes: list[str]

    @property
    def ready(self) -> bool:
        return not self.blocking

    def to_dict(self) -> dict[str, Any]:
        body = dataclasses.asdict(self)
        body["blocking"] = [v.to_dict() for v in self.blocking]
        body["ready"] = self.ready
        return body

    def text(self) -> str:
        out = [f"Extracting {self.context} ({self.package}) cuts:", ""]
        out.append(f"Routes ({len(self.routes)}), moved behind the router:")
        out += [f"  {r['method']:<6} {r['rule']}" for r in self.routes] or ["  none"]
        out.append("Calls into its API, which become HTTP calls:")
        out += [_call(c) for c in self.inbound if c["kind"] != "events"] or ["  none"]
        out.append("Code elsewhere that reads its event types (they travel as "
                   "messages):")
        out += [_call(c) for c in self.inbound if c["kind"] == "events"] or ["  none"]
        out.append("Calls out of it to other contexts, which become HTTP calls or "
                   "messages:")
        out += [_call(c) for c in self.outbound] or ["  none"]
        out.append("Ports its host wires (in-process today, remote after):")
        out.append("  " + (", ".join(self.ports) or "none"))
        out.append("Events it publishes, which leave through SNS:")
        out += [
            f"  {e['event']:<24} consumed by {', '.join(e['consumers']) or 'nobody'}"
            for e in self.published
        ] or ["  none"]
        out.append("Events it consumes, which arrive through SQS:")
        out += [
            f"  {e['event']:<24} from {e['from']}, handled by {e['handler']}"
            for e in self.consumed
        ] or ["  none"]
        where = f" in {self.database}" if self.database else ""
        out.append(f"Tables that move to its own database (rows{where}):")
        out += [
            f"  {t['table']:<20} {t['rows'] if t['rows'] is not None else 'unknown':>8}"
            for t in self.tables
        ]
        out.append("Side effects that become functions:")
        out += [
            f"  {s['name']:<20} on {s['on']}, {s['function']}"
            for s in self.side_effects
        ] or ["  none"]
        out.append("")
        if self.blocking:
            out.append(f"Blocked by {len(self.blocking)} violations:")
            out += [f"  {v.rule:<26} {v.location}  {v.message}" for v in self.blocking]
        else:
            out.append("Nothing blocks the extraction: its edges hold.")
        out += self.notes
        return "\n".join(out)


def _call(call: dict[str, Any]) -> str:
    if call["kind"] == PORT:
        return (f"  {call['location']:<36} {call['from']}'s {call['port']} port -> "
                f"{call['imported']} (the host wires it)")

    blocked = "  (internal: blocks)" if call["kind"] == "internal" else ""
    return (f"  {call['location']:<36} {call['importer']} -> {call['imported']}"
            f"{blocked}")


def plan(
    context_name: str,
    manifest_path: Path | None = None,
    root: Path | None = None,
    database_url: str | None = None,
) -> Plan:
    manifest = load(manifest_path)
    context = manifest.context(context_name)
    layout = Layout(manifest, root)
    report, code, described = inspect(layout, plan=True)
    facts = described["contexts"].get(context_name, {})
    inbound, outbound = _calls(layout, code.edges, context_name)
    into, out_of = _port_calls(layout, described["contexts"], context_name)
    inbound, outbound = inbound + into, outbound + out_of
    counts, notes = _row_counts(context.tables, database_url)
    consumers = [
        (entry["from"], entry["event"], f"{name}.{entry['handler']}")
        for name, other in described["contexts"].items()
        for entry in other.get("consumed", [])
    ]
    effects = [(context_name, s.on, f"{s.name} (side effect)")
               for s in context.side_effects]
    published = [
        {"event": event, "consumers": sorted(
            who for source, what, who in consumers + effects
            if source == context_name and what == event
        )}
        for event in facts.get("published", [])
    ]
    blocking = [
        v for v in report.violations
        if v.context == context_name or v.other == context_name
    ]
    return Plan(
        context=context_name,
        package=context.package,
        routes=facts.get("routes", []),
        inbound=inbound,
        outbound=outbound,
        ports=facts.get("ports", []),
        published=published,
        consumed=facts.get("consumed", []),
        tables=[{"table": t, "rows": counts.get(t)} for t in context.tables],
        side_effects=[dataclasses.asdict(s) for s in context.side_effects],
        blocking=blocking,
        database=database_url,
        notes=report.notes + notes,
    )


def _calls(
    layout: Layout, edges: list[Edge], context: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    inbound, outbound = [], []
    for edge in edges:
        source = layout.context_of(edge.importer)
        target = layout.context_of(edge.imported)
        if source is target or target is None and source is None:
            continue

        ends = target or source
        assert ends is not None
        kind = ("api" if _within(edge.imported, ends.api) else
                "events" if _within(edge.imported, ends.events) else "internal")
        call = {
            "kind": kind if target else "api",
            "importer": edge.importer,
            "imported": edge.imported,
            "from": source.name if source else _label(layout, edge.importer),
            "to": target.name if target else _label(layout, edge.imported),
            "location": f"{layout.shown(edge.path)}:{edge.line}",
        }
        if target is not None and target.name == context:
            inbound.append(call)
        elif source is not None and source.name == context:
            outbound.append(call)
    return inbound, outbound


def _port_calls(
    layout: Layout, contexts: dict[str, Any], context: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Calls through ports the host wires: they cross no import, since the
    host, not the context, imports the provider's API."""
    inbound, outbound = [], []
    for name, facts in contexts.items():
        for port in facts.get("port_calls", []):
            target = f"{port['provider']}.{port['call']}" if port["call"] else (
                port["provider"])
            call = {
                "kind": PORT,
                "importer": f"{port['module']}.Ports.{port['port']}",
                "imported": target,
                "port": port["port"],
                "from": name,
                "to": port["provider"],
                "location": f"{layout.shown(Path(port['file']))}:{port['line']}",
            }
            if port["provider"] == context:
                inbound.append(call)
            elif name == context:
                outbound.append(call)
    return inbound, outbound


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _label(layout: Layout, module: str) -> str:
    return HOST if layout.is_host(module) else NO_CONTEXT


def _row_counts(
    tables: tuple[str, ...], url: str | None
) -> tuple[dict[str, int], list[str]]:
    if url is None:
        return {}, ["Row counts: no database given."]

    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (
            None, "", ":memory:") and not Path(parsed.database).exists():
        return {}, [f"Row counts: there is no database at {parsed.database} yet."]

    engine = sa.create_engine(url)
    try:
        with engine.connect() as db:
            present = set(sa.inspect(db).get_table_names())
            return {
                table: db.execute(
                    sa.select(sa.func.count()).select_from(sa.table(table))
                ).scalar_one()
                for table in tables if table in present
            }, []
    except sa.exc.SQLAlchemyError as error:
        reason = str(error).splitlines()[0]
        return {}, [f"Row counts: the database at {url} cannot be read ({reason})."]
    finally:
        engine.dispose()
