"""The context manifest: what each bounded context is, read from one file.

Everything that needs to know the contexts (checks, hosts, extraction,
messaging topology) derives it from here. A malformed manifest raises
`ManifestError` naming the entry; nothing is imported until asked for.
"""

from __future__ import annotations

import dataclasses
import importlib
import tomllib
from pathlib import Path
from typing import Any

from migrate.errors import ManifestError, UnknownContext

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "monolith" / "contexts.toml"


@dataclasses.dataclass(frozen=True)
class SideEffect:
    name: str
    on: str
    function: str


@dataclasses.dataclass(frozen=True)
class Context:
    name: str
    package: str
    api: str
    events: str
    routes: str
    metadata: str
    unit_of_work: str
    tables: tuple[str, ...]
    handlers: str | None = None
    replica: str | None = None
    totals: tuple[str, ...] = ()
    side_effects: tuple[SideEffect, ...] = ()

    def load(self, reference: str) -> Any:
        """Import `package.module` or `package.module:attribute`."""
        module_name, _, attribute = reference.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ManifestError(
                f"context {self.name}: cannot import {module_name!r} ({error})"
            ) from None

        if not attribute:
            return module

        try:
            return getattr(module, attribute)
        except AttributeError:
            raise ManifestError(
                f"context {self.name}: {module_name!r} has no {attribute!r}"
            ) from None

    @property
    def route_list(self) -> list[Any]:
        return list(self.load(self.routes).ROUTES)

    @property
    def route_errors(self) -> dict[type[Exception], tuple[int, str]]:
        return dict(self.load(self.routes).ERRORS)

    @property
    def event_handlers(self) -> dict[type, Any]:
        if not self.handlers:
            return {}

        return dict(getattr(self.load(self.handlers), "EVENT_HANDLERS", {}))


@dataclasses.dataclass(frozen=True)
class Manifest:
    name: str
    contexts: dict[str, Context]
    path: Path

    def context(self, name: str) -> Context:
        if name not in self.contexts:
            raise UnknownContext(name, list(self.contexts))

        return self.contexts[name]

    def owner_of(self, table: str) -> str | None:
        return next((c.name for c in self.contexts.values() if table in c.tables), None)


_REQUIRED = ("package", "api", "events", "routes", "metadata", "unit_of_work", "tables")


def load(path: Path | None = None) -> Manifest:
    path = path or DEFAULT_PATH
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"no context manifest at {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise ManifestError(f"{path}: {error}") from None

    name = raw.get("monolith", {}).get("name")
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{path}: [monolith] needs a name")

    contexts = {
        key: _context(path, key, entry) for key, entry in raw.get("contexts", {}).items()
    }
    if not contexts:
        raise ManifestError(f"{path}: declares no [contexts.<name>]")

    owners: dict[str, str] = {}
    for context in contexts.values():
        for table in context.tables:
            if table in owners:
                raise ManifestError(
                    f"{path}: table {table!r} is claimed by {owners[table]} and "
                    f"{context.name}; a table belongs to exactly one context"
                )
            owners[table] = context.name

    return Manifest(name, contexts, path)


def _context(path: Path, name: str, entry: dict[str, Any]) -> Context:
    missing = [key for key in _REQUIRED if key not in entry]
    if missing:
        raise ManifestError(f"{path}: context {name} lacks {', '.join(missing)}")

    unknown = set(entry) - set(_REQUIRED) - {"handlers", "replica", "totals", "side_effects"}
    if unknown:
        raise ManifestError(f"{path}: context {name} has unknown keys {sorted(unknown)}")

    effects = tuple(
        SideEffect(effect, spec["on"], spec["function"])
        for effect, spec in entry.get("side_effects", {}).items()
    )
    return Context(
        name=name,
        package=entry["package"],
        api=entry["api"],
        events=entry["events"],
        routes=entry["routes"],
        metadata=entry["metadata"],
        unit_of_work=entry["unit_of_work"],
        tables=tuple(entry["tables"]),
        handlers=entry.get("handlers"),
        replica=entry.get("replica"),
        totals=tuple(entry.get("totals", ())),
        side_effects=effects,
    )
