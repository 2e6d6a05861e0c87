"""The context manifest: what each bounded context is, read from one file.

Everything that needs to know the contexts (checks, hosts, extraction,
messaging topology) derives it from here. A malformed manifest raises
`ManifestError` naming the entry; nothing is imported until asked for.

A context follows its writer on a replica either through its own replica
module (`replica`) or through declared aggregates (`aggregates`: a root
table, its key, child tables), whose row images the kit records and applies
itself (see `migrate.kernel.images`).

A context that `migrate finish` moved out of the monolith is `finished`
(the monolith no longer hosts it) and has a `root`: the folder, relative to
the manifest, that holds its top-level package now. Loading a manifest puts
every such root, and the folder that holds the monolith's own packages, on
`sys.path` (after what is there), so every context's modules, and the
modules of other contexts that import its events, are found where they
live; nothing is imported until asked for.

`[monolith]` names, beyond the monolith's name, how the kit runs it (see
`Hosting`): its host class, the module that serves it, its migrations and
its seeder. Each defaults to the reference monolith's.

A context whose events must arrive in order per aggregate declares `fifo =
true`: its topic and every queue it feeds are then FIFO (an SNS topic is
FIFO or not, so the choice is the context's, for all its event types).

A context may declare how its service differs from it (all optional):
`service_metadata` and `service_unit_of_work` name the service's own
tables and the unit of work over them (default: the context's), and a
`copy` block per service table says where its rows come from in the
monolith: a table, column renames, a converter by name from
`migrate.sync.convert`, or a constant. Loading checks the block's shape and
the converters' names; whether the tables and columns exist is checked when
the mapping is built from the imported metadata (`migrate.sync.mapping`).

The `[check]` section says what `migrate check` holds the code to: the host
modules that belong to no context, the shared kernel every module may
import, the kit's own tables, and per role of module inside a context what
that module may not import. Loading validates its shape and the context
names it mentions; whether its packages exist is the check's business.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from migrate.errors import ManifestError, UnknownContext
from migrate.kernel.events import Event
from migrate.kernel.images import Aggregate, ImageError, build_aggregates
from migrate.settings import DEFAULT_MANIFEST, MANIFEST_VARIABLE

DEFAULT_PATH = DEFAULT_MANIFEST


@dataclasses.dataclass(frozen=True)
class SideEffect:
    """Slow work a context does after one of its events.

    `handler` is the work itself, `(event data, port) -> bool`, run by either
    host; `function` is its Lambda handler, fed by SQS.
    """

    name: str
    on: str
    function: str
    handler: str


@dataclasses.dataclass(frozen=True)
class ContextPort:
    """A port of one context that another context's API answers.

    Declared in the context's `ports` module as an attribute of its `Ports`
    protocol named after the providing context (`catalog: Catalog`); the
    host wires it (in-process calls on the monolith, HTTP on a service).
    `calls` are the methods of its protocol.
    """

    name: str
    provider: str
    protocol: type | None
    module: str

    @property
    def calls(self) -> list[str]:
        if self.protocol is None:
            return []

        return sorted(
            name for name, value in vars(self.protocol).items()
            if callable(value) and not name.startswith("_")
        )


@dataclasses.dataclass(frozen=True)
class ColumnCopy:
    """Where one column of a service table gets its value: a monolith
    column (`source`, through the converter `convert` when one is named),
    or the `constant` when `source` is None."""

    column: str
    source: str | None
    convert: str | None = None
    constant: Any = None


@dataclasses.dataclass(frozen=True)
class TableCopy:
    """A service table's `copy` block: its monolith table (`source`), the
    columns that are not copied as they are, and the columns that match a
    row on both sides (`key`; empty means the table's primary key)."""

    table: str
    source: str
    columns: tuple[ColumnCopy, ...] = ()
    key: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class AggregateSpec:
    """A declared aggregate: its root table, the root's key, its child tables.

    Child tables hang off the root by a foreign key onto the key's columns;
    the kit finds it when it builds the aggregate (`Context.aggregates_built`).
    """

    name: str
    root: str
    key: tuple[str, ...]
    children: tuple[str, ...] = ()


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
    aggregates: tuple[AggregateSpec, ...] = ()
    root: Path | None = None
    finished: bool = False
    outlets: str | None = None
    service_metadata: str | None = None
    service_unit_of_work: str | None = None
    copies: tuple[TableCopy, ...] = ()
    fifo: bool = False

    @property
    def service_tables(self) -> str:
        """The service's MetaData reference: its own, or the context's."""
        return self.service_metadata or self.metadata

    @property
    def service_unit(self) -> str:
        """The service's unit of work reference: its own, or the context's."""
        return self.service_unit_of_work or self.unit_of_work

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
    def follows(self) -> bool:
        """Whether a replica of this context can follow its writer."""
        return self.replica is not None or bool(self.aggregates)

    def aggregates_built(self) -> tuple[Aggregate, ...]:
        """The declared aggregates over the context's own tables."""
        metadata = self.load(self.metadata)
        try:
            return build_aggregates(self.name, metadata, self.aggregates)
        except ImageError as error:
            raise ManifestError(str(error)) from None

    def unfollowed_tables(self) -> list[str]:
        """The context's own tables that no declared aggregate covers."""
        covered = {a.root for a in self.aggregates} | {
            child for a in self.aggregates for child in a.children
        }
        queues = {f"{self.name}_outbox", f"{self.name}_inbox"}
        return [t for t in self.tables if t not in covered and t not in queues]

    @property
    def ports_module(self) -> str:
        return f"{self.package}.ports"

    def ports_to(self, contexts: Iterable[str]) -> list[ContextPort]:
        """The ports of this context that the APIs of `contexts` answer."""
        if importlib.util.find_spec(self.ports_module) is None:
            return []

        module = self.load(self.ports_module)
        declared = getattr(getattr(module, "Ports", None), "__annotations__", {})
        others = set(contexts) - {self.name}
        found = []
        for name, annotation in declared.items():
            if name not in others:
                continue
            # Annotations are strings under `from __future__ import annotations`.
            protocol = getattr(module, annotation, None) if isinstance(
                annotation, str) else annotation
            found.append(ContextPort(name, name, protocol if isinstance(
                protocol, type) else None, self.ports_module))
        return sorted(found, key=lambda port: port.name)

    @property
    def event_handlers(self) -> dict[type[Event], Any]:
        if not self.handlers:
            return {}

        return dict(getattr(self.load(self.handlers), "EVENT_HANDLERS", {}))


@dataclasses.dataclass(frozen=True)
class Role:
    """Modules of a context that play one part, and what they may not import.

    `modules` are patterns of names relative to the context's package
    (`domain`, `pricing.**`; `__init__` is the package itself); `contexts`
    limits the role to those contexts (every context when empty).
    """

    name: str
    modules: tuple[str, ...]
    forbid: tuple[str, ...] = ()
    contexts: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Boundaries:
    """The `[check]` section: the edges `migrate check` holds the code to."""

    host: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    kit_tables: tuple[str, ...] = ()
    roles: tuple[Role, ...] = ()


@dataclasses.dataclass(frozen=True)
class Hosting:
    """The `[monolith]` section beyond its name: how the kit runs the monolith.

    `host` is the class (`module:Class`) the kit's processes build the
    monolith's host from: `Host(database_url, manifest)`, with the units of
    work, ports and dispatch of `monolith.host.Monolith`. `serve` is the
    module whose `python -m <serve> --database URL --port N --side-effects
    functions` serves its HTTP routes, leaving side effects to the functions.
    `migrations` is its Alembic folder (relative to the manifest).
    `seed` is the callable (`module:function`) that `migrate seed --orders
    N` calls as `seed(host, N, progress)`.
    """

    host: str = "monolith.host:Monolith"
    serve: str = "monolith"
    migrations: Path | None = None
    seed: str | None = None


@dataclasses.dataclass(frozen=True)
class Manifest:
    name: str
    contexts: dict[str, Context]
    path: Path
    boundaries: Boundaries = Boundaries()
    hosting: Hosting = Hosting()

    @property
    def migrations(self) -> Path:
        """The monolith's Alembic folder: declared, or `migrations` beside the
        manifest."""
        return self.hosting.migrations or self.path.resolve().parent / "migrations"

    def host_class(self) -> Any:
        return _reference(self.path, "[monolith] host", self.hosting.host)

    def seeder(self) -> Any:
        if self.hosting.seed is None:
            raise ManifestError(
                f"{self.path}: [monolith] names no seed; `migrate seed` needs one"
            )
        return _reference(self.path, "[monolith] seed", self.hosting.seed)

    def context(self, name: str) -> Context:
        if name not in self.contexts:
            raise UnknownContext(name, list(self.contexts))

        return self.contexts[name]

    @property
    def code_root(self) -> Path:
        """The folder that holds the hosted contexts' top-level packages:
        beside the manifest, or one folder up."""
        tops = {c.package.split(".")[0] for c in self.hosted.values()}
        folder = self.path.resolve().parent
        for candidate in (folder, folder.parent):
            if all((candidate / top / "__init__.py").is_file() for top in tops):
                return candidate

        raise ManifestError(
            f"{self.path}: the packages {', '.join(sorted(tops))} are neither "
            f"beside the manifest nor one folder up ({folder}, {folder.parent})"
        )

    @property
    def hosted(self) -> dict[str, Context]:
        """The contexts the monolith hosts: every one not finished."""
        return {n: c for n, c in self.contexts.items() if not c.finished}

    def owner_of(self, table: str) -> str | None:
        return next((c.name for c in self.contexts.values() if table in c.tables), None)


_REQUIRED = ("package", "api", "events", "routes", "metadata", "unit_of_work", "tables")
_OPTIONAL = {
    "handlers",
    "replica",
    "totals",
    "side_effects",
    "outlets",
    "service_metadata",
    "service_unit_of_work",
    "copy",
    "fifo",
    "aggregates",
    "root",
    "finished",
}
_SIDE_EFFECT_KEYS = ("on", "function", "handler")


def load(path: Path | None = None) -> Manifest:
    """The manifest at `path`; without one, where MIGRATE_MANIFEST says, or the
    reference monolith's."""
    path = path or Path(os.environ.get(MANIFEST_VARIABLE) or DEFAULT_PATH)
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
        key: _context(path, key, entry)
        for key, entry in raw.get("contexts", {}).items()
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

    boundaries = _boundaries(path, raw.get("check", {}), contexts)
    hosting = _hosting(path, raw["monolith"])
    for context in contexts.values():
        if context.root is not None and str(context.root) not in sys.path:
            sys.path.append(str(context.root))
    _importable(path, {c.package.split(".")[0] for c in contexts.values()
                        if not c.finished})
    return Manifest(name, contexts, path, boundaries, hosting)


def _context(path: Path, name: str, entry: dict[str, Any]) -> Context:
    missing = [key for key in _REQUIRED if key not in entry]
    if missing:
        raise ManifestError(f"{path}: context {name} lacks {', '.join(missing)}")

    unknown = set(entry) - set(_REQUIRED) - _OPTIONAL
    if unknown:
        raise ManifestError(
            f"{path}: context {name} has unknown keys {sorted(unknown)}"
        )

    fifo = entry.get("fifo", False)
    if not isinstance(fifo, bool):
        raise ManifestError(
            f"{path}: context {name} has fifo = {fifo!r}; it is true or false"
        )

    effects = tuple(
        _side_effect(path, name, effect, spec)
        for effect, spec in entry.get("side_effects", {}).items()
    )
    aggregates = _aggregates(path, name, entry)
    root = entry.get("root")
    if root is not None and not isinstance(root, str):
        raise ManifestError(f"{path}: context {name}: root must be a folder's path")
    finished = entry.get("finished", False)
    if not isinstance(finished, bool):
        raise ManifestError(
            f"{path}: context {name}: finished is {finished!r}; it is true or false"
        )
    if effects and "outlets" not in entry:
        raise ManifestError(
            f"{path}: context {name} declares side effects but no outlets "
            "module (whose outlet(side_effect) gives each its port)"
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
        aggregates=aggregates,
        root=(path.parent / root).resolve() if root is not None else None,
        finished=finished,
        service_metadata=entry.get("service_metadata"),
        service_unit_of_work=entry.get("service_unit_of_work"),
        copies=tuple(
            _table_copy(path, name, table, spec)
            for table, spec in entry.get("copy", {}).items()
        ),
        fifo=fifo,
        outlets=entry.get("outlets"),
    )


_HOSTING_KEYS = {"name", "host", "serve", "migrations", "seed"}


def _hosting(path: Path, entry: dict[str, Any]) -> Hosting:
    unknown = set(entry) - _HOSTING_KEYS
    if unknown:
        raise ManifestError(f"{path}: [monolith] has unknown keys {sorted(unknown)}")

    for key in _HOSTING_KEYS - {"name"}:
        if key in entry and (not isinstance(entry[key], str) or not entry[key]):
            raise ManifestError(f"{path}: [monolith] {key} must be a non-empty string")

    for key in ("host", "seed"):
        if key in entry and ":" not in entry[key]:
            raise ManifestError(
                f"{path}: [monolith] {key} = {entry[key]!r}; it names "
                "'module:attribute'"
            )

    migrations = entry.get("migrations")
    return Hosting(
        host=entry.get("host", Hosting.host),
        serve=entry.get("serve", Hosting.serve),
        migrations=(path.parent / migrations).resolve() if migrations else None,
        seed=entry.get("seed"),
    )


def _reference(path: Path, where: str, reference: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ManifestError(
            f"{path}: {where}: cannot import {module_name!r} ({error})"
        ) from None

    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ManifestError(
            f"{path}: {where}: {module_name!r} has no {attribute!r}"
        ) from None


def _importable(path: Path, tops: set[str]) -> None:
    """Put the folder holding the manifest's packages on `sys.path`, after
    what is there: a monolith beside its manifest imports as itself."""
    folder = path.resolve().parent
    for candidate in (folder, folder.parent):
        if any((candidate / top / "__init__.py").is_file() for top in tops):
            if str(candidate) not in sys.path:
                sys.path.append(str(candidate))
            return


_AGGREGATE_KEYS = {"root", "key", "children"}


def _aggregates(
    path: Path, name: str, entry: dict[str, Any]
) -> tuple[AggregateSpec, ...]:
    declared = entry.get("aggregates", {})
    if not isinstance(declared, dict):
        raise ManifestError(f"{path}: context {name}: aggregates must be a table")

    if declared and entry.get("replica"):
        raise ManifestError(
            f"{path}: context {name} declares both a replica module and "
            "aggregates; a replica follows through one of them"
        )

    if declared and (entry.get("service_metadata") or entry.get("copy")):
        raise ManifestError(
            f"{path}: context {name} declares aggregates and a service shaped "
            "otherwise; row images apply to the context's own tables, so a "
            "service of another shape follows through a replica module"
        )

    tables = set(entry.get("tables", ()))
    found: list[AggregateSpec] = []
    placed: dict[str, str] = {}
    for aggregate, spec in declared.items():
        where = f"[contexts.{name}.aggregates.{aggregate}]"
        if not isinstance(spec, dict):
            raise ManifestError(f"{path}: {where} must be a table")

        unknown = set(spec) - _AGGREGATE_KEYS
        if unknown:
            raise ManifestError(f"{path}: {where} has unknown keys {sorted(unknown)}")

        missing = [key for key in ("root", "key") if key not in spec]
        if missing:
            raise ManifestError(f"{path}: {where} lacks {', '.join(missing)}")

        root = spec["root"]
        key = [spec["key"]] if isinstance(spec["key"], str) else spec["key"]
        children = _strings(path, f"{where} children", spec.get("children", []))
        for table in (root, *children):
            if table not in tables:
                raise ManifestError(
                    f"{path}: {where} names table {table!r}, which context {name} "
                    "does not own; an aggregate is made of its context's tables"
                )
            if table in placed:
                raise ManifestError(
                    f"{path}: table {table!r} is in aggregates {placed[table]} and "
                    f"{aggregate}; a table belongs to one aggregate"
                )
            placed[table] = aggregate
        found.append(
            AggregateSpec(
                aggregate, root, _strings(path, f"{where} key", key), children
            )
        )
    return tuple(found)


_COPY_KEYS = {"from", "columns", "key"}
_COLUMN_KEYS = {"from", "convert", "constant"}


def _table_copy(path: Path, context: str, table: str, spec: Any) -> TableCopy:
    from migrate.sync.convert import CONVERTERS

    where = f"[contexts.{context}.copy.{table}]"
    if not isinstance(spec, dict):
        raise ManifestError(f"{path}: {where} must be a table")

    unknown = set(spec) - _COPY_KEYS
    if unknown:
        raise ManifestError(
            f"{path}: {where} has unknown keys {sorted(unknown)}; a copy block "
            f"takes {', '.join(sorted(_COPY_KEYS))}"
        )

    source = spec.get("from", table)
    if not isinstance(source, str) or not source:
        raise ManifestError(f"{path}: {where} from must name a monolith table")

    columns_spec = spec.get("columns", {})
    if not isinstance(columns_spec, dict):
        raise ManifestError(f"{path}: {where} columns must be a table")

    columns = []
    for column, given in columns_spec.items():
        at = f"{where} columns.{column}"
        if isinstance(given, str) and given:
            columns.append(ColumnCopy(column, given))
            continue

        if not isinstance(given, dict) or not given:
            raise ManifestError(
                f"{path}: {at} = {given!r}: a column is a monolith column's name, "
                "or {from = ..., convert = ...}, or {constant = ...}"
            )

        unknown = set(given) - _COLUMN_KEYS
        if unknown:
            raise ManifestError(f"{path}: {at} has unknown keys {sorted(unknown)}")

        if "constant" in given:
            if set(given) != {"constant"}:
                raise ManifestError(
                    f"{path}: {at}: a constant column takes nothing but its constant"
                )
            columns.append(ColumnCopy(column, None, constant=given["constant"]))
            continue

        convert = given.get("convert")
        if convert is not None and convert not in CONVERTERS:
            raise ManifestError(
                f"{path}: {at} converts with {convert!r}; the converters are "
                f"{', '.join(sorted(CONVERTERS))}"
            )
        from_column = given.get("from", column)
        if not isinstance(from_column, str) or not from_column:
            raise ManifestError(f"{path}: {at} from must name a monolith column")
        columns.append(ColumnCopy(column, from_column, convert))

    key = _strings(path, f"{where} key", spec.get("key", []))
    return TableCopy(table, source, tuple(columns), key)



def _side_effect(path: Path, context: str, name: str, spec: Any) -> SideEffect:
    where = f"context {context}: side effect {name}"
    if not isinstance(spec, dict):
        raise ManifestError(f"{path}: {where} must be a table")

    missing = [key for key in _SIDE_EFFECT_KEYS if key not in spec]
    if missing:
        raise ManifestError(f"{path}: {where} lacks {', '.join(missing)}")

    unknown = set(spec) - set(_SIDE_EFFECT_KEYS)
    if unknown:
        raise ManifestError(f"{path}: {where} has unknown keys {sorted(unknown)}")

    values = [spec[key] for key in _SIDE_EFFECT_KEYS]
    if not all(isinstance(value, str) and value for value in values):
        raise ManifestError(
            f"{path}: {where}: {', '.join(_SIDE_EFFECT_KEYS)} must be non-empty "
            "strings"
        )
    return SideEffect(name, *values)


_CHECK_KEYS = {"host", "shared", "kit_tables", "roles"}
_ROLE_KEYS = {"modules", "forbid", "contexts"}


def _boundaries(
    path: Path, entry: dict[str, Any], contexts: dict[str, Context]
) -> Boundaries:
    unknown = set(entry) - _CHECK_KEYS
    if unknown:
        raise ManifestError(f"{path}: [check] has unknown keys {sorted(unknown)}")

    roles = tuple(
        _role(path, name, spec, contexts)
        for name, spec in entry.get("roles", {}).items()
    )
    return Boundaries(
        host=_strings(path, "[check] host", entry.get("host", [])),
        shared=_strings(path, "[check] shared", entry.get("shared", [])),
        kit_tables=_strings(path, "[check] kit_tables", entry.get("kit_tables", [])),
        roles=roles,
    )


def _role(path: Path, name: str, spec: Any, contexts: dict[str, Context]) -> Role:
    where = f"[check.roles.{name}]"
    if not isinstance(spec, dict):
        raise ManifestError(f"{path}: {where} must be a table")

    unknown = set(spec) - _ROLE_KEYS
    if unknown:
        raise ManifestError(f"{path}: {where} has unknown keys {sorted(unknown)}")

    if "modules" not in spec:
        raise ManifestError(f"{path}: {where} lacks modules")

    scope = _strings(path, f"{where} contexts", spec.get("contexts", []))
    for context in scope:
        if context not in contexts:
            raise ManifestError(
                f"{path}: {where} names context {context!r}, which the manifest "
                f"does not declare; the contexts are {', '.join(sorted(contexts))}"
            )

    return Role(
        name=name,
        modules=_strings(path, f"{where} modules", spec["modules"]),
        forbid=_strings(path, f"{where} forbid", spec.get("forbid", [])),
        contexts=scope,
    )


def _strings(path: Path, where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
        isinstance(item, str) and item for item in value
    ):
        raise ManifestError(f"{path}: {where} must be a list of non-empty strings")

    return tuple(value)
