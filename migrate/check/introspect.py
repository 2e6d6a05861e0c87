"""Describe the contexts' tables (and, for a plan, their routes and events).

This runs in a child process: `python -m migrate.check.introspect --manifest
PATH --root DIR [--plan]` imports each context's metadata and unit-of-work
modules from DIR, reads the SQLAlchemy metadata and ORM mappers, and prints
one JSON document. Running apart keeps the checked code out of the caller's
process: a copy of the monolith never meets the original in `sys.modules`,
and nothing the checked modules do at import time stays behind.

It prints `{"error": "..."}` and exits 2 when the manifest's references do
not import. Lines are found by the literal text of a table's name or a
foreign key's target in its module, falling back to the first line.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import tokenize
from pathlib import Path
from types import ModuleType
from typing import Any

FIRST_LINE = 1


def describe(manifest_path: Path, root: Path, plan: bool) -> dict[str, Any]:
    import sqlalchemy as sa

    from migrate.manifest import load

    manifest = load(manifest_path)
    contexts: dict[str, Any] = {}
    for name, context in manifest.hosted.items():
        metadata = context.load(context.metadata)
        if not isinstance(metadata, sa.MetaData):
            from migrate.errors import ManifestError

            raise ManifestError(
                f"context {name}: metadata {context.metadata!r} is a "
                f"{type(metadata).__name__}, not a SQLAlchemy MetaData"
            )

        context.load(context.unit_of_work.partition(":")[0])
        _require_references(context)
        module = sys.modules[context.metadata.partition(":")[0]]
        contexts[name] = {"tables": [_table(t, module) for t in _tables(metadata)]}
        if plan:
            contexts[name].update(_plan_facts(context, list(manifest.contexts)))

    return {"contexts": contexts, "relationships": _relationships()}


def _references(context: Any) -> list[tuple[str, str, str | None]]:
    """(manifest key, reference, attribute its value must have) of every
    module and function the context names besides its tables."""
    found: list[tuple[str, str, str | None]] = [
        ("unit_of_work", context.unit_of_work, None),
        ("routes", context.routes, "ROUTES"),
    ]
    if context.handlers:
        found.append(("handlers", context.handlers, None))
    if context.replica:
        found.append(("replica", context.replica, "apply"))
    if context.outlets:
        found.append(("outlets", context.outlets, "outlet"))
    for effect in context.side_effects:
        where = f"side_effects.{effect.name}"
        found += [(f"{where}.function", effect.function, None),
                  (f"{where}.handler", effect.handler, None)]
    return found


def _require_references(context: Any) -> None:
    """Import each reference, so that a typo exits 2 naming its entry rather
    than failing the host that first needs it."""
    from migrate.errors import ManifestError

    for key, reference, needs in _references(context):
        where = f"context {context.name}: {key} {reference!r}"
        try:
            value = context.load(reference)
        except ManifestError as error:
            reason = str(error).removeprefix(f"context {context.name}: ")
            raise ManifestError(f"{where} does not import: {reason}") from None
        # Whatever importing the checked code raised is the entry's fault.
        except Exception as error:  # noqa: BLE001
            raise ManifestError(f"{where} does not import: "
                                f"{type(error).__name__}: {error}") from None

        if ":" in reference and not callable(value):
            raise ManifestError(f"{where} is a {type(value).__name__}, not a "
                                "function or class")
        if needs is not None and not hasattr(value, needs):
            raise ManifestError(f"{where} has no {needs}")


def _tables(metadata: Any) -> list[Any]:
    # Not `sorted_tables`: sorting resolves foreign keys, and one that points
    # into another context's metadata would fail before it could be reported.
    return [metadata.tables[key] for key in sorted(metadata.tables)]


def _table(table: Any, module: ModuleType) -> dict[str, Any]:
    path = inspect.getsourcefile(module) or ""
    bound = [f"{name} =" for name, value in vars(module).items() if value is table]
    line = _line_of(path, [f'"{table.name}"', f"'{table.name}'"],
                    default=(_line_of(path, bound, at_start=True) if bound
                             else FIRST_LINE))
    keys = []
    for column in table.columns:
        for key in column.foreign_keys:
            target = key.target_fullname
            keys.append({
                "column": column.name,
                "target": target,
                "target_table": target.rsplit(".", 1)[0].split(".")[-1],
                "line": _line_of(path, [f'"{target}"', f"'{target}'"], default=line),
            })
    return {"name": table.name, "file": path, "line": line, "foreign_keys": keys}


def _relationships() -> list[dict[str, Any]]:
    from sqlalchemy.orm import configure_mappers, mapperlib

    registries = list(mapperlib._all_registries())
    if not registries:
        return []

    configure_mappers()
    found = []
    for registry in registries:
        mapper: Any
        for mapper in registry.mappers:
            cls = mapper.class_
            path = inspect.getsourcefile(cls) or ""
            start = _class_line(cls)
            for attribute, relationship in mapper.relationships.items():
                found.append({
                    "class": f"{cls.__module__}.{cls.__qualname__}",
                    "attribute": attribute,
                    "file": path,
                    "line": _attribute_line(path, attribute, start),
                    "source_table": mapper.local_table.name,
                    "target_table": relationship.mapper.local_table.name,
                })
    return found


def _plan_facts(context: Any, contexts: list[str]) -> dict[str, Any]:
    from migrate.kernel.events import Event

    events = context.load(context.events)
    published = [
        value.type_name() for value in vars(events).values()
        if isinstance(value, type) and issubclass(value, Event) and value is not Event
        and value.__module__ == events.__name__
    ]
    consumed = [
        {"event": event.type_name(), "from": event.context,
         "handler": getattr(handler, "__name__", repr(handler))}
        for event, handler in context.event_handlers.items()
    ]
    routes = [
        {"method": r.method, "rule": r.rule, "endpoint": r.endpoint}
        for r in context.route_list
    ]
    return {"published": sorted(published), "consumed": consumed, "routes": routes,
            "ports": _ports(context), "port_calls": _port_calls(context, contexts)}


# Protocols every context declares the same way: how a host hands it its
# units of work. They say nothing about what extraction cuts.
_GENERIC_PORTS = {"Ports", "UnitOfWork"}


def _ports(context: Any) -> list[str]:
    import importlib.util
    from typing import Protocol

    module_name = context.ports_module
    if importlib.util.find_spec(module_name) is None:
        return []

    ports = context.load(module_name)

    return sorted(
        name for name, value in vars(ports).items()
        if isinstance(value, type) and Protocol in getattr(value, "__mro__", ())
        and value.__module__ == module_name and value is not Protocol
        and name not in _GENERIC_PORTS
    )


def _port_calls(context: Any, contexts: list[str]) -> list[dict[str, Any]]:
    """Each call this context makes to another context's API through a port."""
    found = []
    for port in context.ports_to(contexts):
        module = sys.modules[port.module]
        path = inspect.getsourcefile(module) or ""
        owner = getattr(module, "Ports", None)
        start = _class_line(owner) if isinstance(owner, type) else FIRST_LINE
        line = _line_of(path, [f"{port.name}:"], default=start, after=start,
                        at_start=True)
        # A port whose protocol cannot be read still crosses the edge.
        found += [{"port": port.name, "provider": port.provider, "call": call,
                   "module": port.module, "file": path, "line": line}
                  for call in port.calls or [None]]
    return found


def _attribute_line(path: str, attribute: str, start: int) -> int:
    """Declared in the class body (`order = ...`), or mapped imperatively
    (`properties={"order": ...}`); the class's line when neither is found."""
    quoted = _line_of(path, [f"'{attribute}'", f'"{attribute}"'], default=start,
                      after=start)
    return _line_of(path, [f"{attribute} =", f"{attribute}:"], default=quoted,
                    after=start, at_start=True)


def _class_line(cls: type) -> int:
    try:
        return inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return FIRST_LINE


def _line_of(
    path: str, needles: list[str], default: int = FIRST_LINE, after: int = 1,
    at_start: bool = False,
) -> int:
    try:
        # Decoded as Python decoded the module (a PEP 263 line, a BOM).
        with tokenize.open(path) as source:
            lines = source.read().splitlines()
    except (OSError, SyntaxError, UnicodeError):
        return default

    for number, text in enumerate(lines, 1):
        if number < after:
            continue
        text = text.lstrip() if at_start else text
        if any(text.startswith(n) if at_start else n in text for n in needles):
            return number
    return default


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m migrate.check.introspect")
    parser.add_argument("--manifest", required=True, type=Path)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--plan", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.root))

    from migrate.errors import MigrateError

    try:
        described = describe(args.manifest, args.root, args.plan)
    except MigrateError as error:
        print(json.dumps({"error": str(error)}))
        return 2

    print(json.dumps(described))
    return 0


if __name__ == "__main__":
    sys.exit(main())
