"""Code edges: every import in the monolith, held to the manifest.

Grimp builds the import graph (its Rust scanner resolves relative imports
and `from package import module`, and gives each import its line). Imports
inside functions and under `if TYPE_CHECKING:` are in that graph and are
checked like any other: a dependency used only for types is still one.

What grimp does not see, this module adds, so nothing is skipped silently:

- Files in a folder without `__init__.py`: grimp does not descend there, yet
  Python imports them as namespace packages. They are found by walking the
  package folders, reported (`no-init`) unless the host patterns declare
  them (Alembic's scripts), and their imports are read with `ast` and checked.
- Star imports: grimp records the module; the star itself is reported.
- `importlib.import_module("name")` and `__import__("name")` with a literal
  name are checked as imports; with any other argument they are reported.
  So are they under another name (`from importlib import import_module as
  load`, `load = __import__`, `importlib.__import__`, `getattr(importlib,
  "import_module")`), and a dynamic importer handed around uncalled is
  reported, since the names it will import cannot be read.
- A file that does not parse, or cannot be read (its bytes do not decode in
  the encoding it declares, or it vanished), stops grimp at the first one;
  every such file is reported (`syntax-error`, `unreadable`) and no import
  rule is evaluated until they all read, because a graph with holes would
  pass what it cannot see. Sources are decoded as Python does: the encoding
  a PEP 263 line or a byte-order mark declares, UTF-8 otherwise.

Imports of outside packages carry their full dotted name, read from the
import statement (`from sqlalchemy.orm import Session` is
`sqlalchemy.orm.Session`), so a role can forbid the ORM and allow the Core.
Only direct imports are judged: a chain through the shared kernel is allowed
by declaring the kernel shared.

A pattern that guards nothing is reported (`unused-pattern`): a `host` or
role `modules` pattern that matches no module, a `shared` pattern that no
import matches, a `forbid` pattern that names no module imported anywhere
in the code or installed here (see `migrate.check.installed`).
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import os
import re
import tokenize
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import grimp
from grimp.application.config import settings as grimp_settings
from grimp.application.ports.packagefinder import AbstractPackageFinder
from grimp.exceptions import SourceSyntaxError

from migrate.check.errors import CheckError
from migrate.check.installed import names_a_module
from migrate.check.layout import Layout
from migrate.check.patterns import PatternSet, compile_pattern
from migrate.check.report import HOST, MANIFEST, NO_CONTEXT, Violation

# Only files that mention one of these are parsed for stars and dynamic imports.
_NEEDS_AST = re.compile(r"import\s+\*|import_module|__import__")
# Functions that import the module named by their first argument.
_IMPORTERS = ("import_module", "__import__")
# The modules that offer them, under their own names.
_IMPORTER_MODULES = ("importlib", "builtins")


class Unreadable(CheckError):
    """A source file whose text cannot be read; reported as a violation, it
    never leaves the check."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def read_source(path: Path) -> str:
    """A module's text, decoded as Python decodes it (PEP 263, BOM, UTF-8)."""
    try:
        with tokenize.open(path) as source:
            return source.read()
    except (OSError, SyntaxError, UnicodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror \
            else str(error)
        raise Unreadable(path, reason) from None


@dataclasses.dataclass(frozen=True)
class Edge:
    """One imported name: a module of the monolith, or an outside dotted name."""

    importer: str
    imported: str
    module: str
    path: Path
    line: int
    internal: bool
    dynamic: bool = False


@dataclasses.dataclass
class CodeResult:
    violations: list[Violation]
    modules: int
    edges: list[Edge]
    notes: list[str] = dataclasses.field(default_factory=list)


class _RootPackageFinder(AbstractPackageFinder):
    """Finds the checked packages under the root, not on sys.path, so a copy
    of a monolith is checked even where the original is already imported."""

    def __init__(self, root: Path):
        self.root = root

    def determine_package_directories(self, package_name, file_system):  # type: ignore[no-untyped-def]
        return {str(self.root.joinpath(*package_name.split(".")))}


@contextlib.contextmanager
def _packages_under(root: Path) -> Iterator[None]:
    previous = grimp_settings.PACKAGE_FINDER
    grimp_settings.configure(PACKAGE_FINDER=_RootPackageFinder(root))
    try:
        yield
    finally:
        grimp_settings.configure(PACKAGE_FINDER=previous)


def check_code(layout: Layout) -> CodeResult:
    _lines.cache_clear()
    try:
        with _packages_under(layout.root):
            graph = grimp.build_graph(
                *layout.tops, include_external_packages=True, cache_dir=None
            )
    # Grimp stops at the first file it cannot parse or decode; every such
    # file is then found and reported.
    except (SourceSyntaxError, UnicodeError, OSError):
        return _unparsable(layout)

    modules = {m for m in graph.modules if layout.is_internal(m)}
    orphans = _orphans(layout, modules)
    edges = list(_graph_edges(layout, graph, modules))
    violations: list[Violation] = []
    for module in sorted(modules):
        edges.extend(_read_extras(layout, module, layout.path_of(module),
                                  modules, violations, all_imports=False))
    for module, path in sorted(orphans.items()):
        edges.extend(_read_extras(layout, module, path, modules, violations,
                                  all_imports=True))

    violations.extend(_ownership(layout, modules, orphans))
    for edge in edges:
        violations.extend(_judge(layout, edge))
    violations.extend(_unused_patterns(layout, edges))
    return CodeResult(_deduplicated(violations), len(modules) + len(orphans),
                      [e for e in edges if e.internal])


def _graph_edges(
    layout: Layout, graph: grimp.ImportGraph, modules: set[str]
) -> Iterator[Edge]:
    for importer in sorted(modules):
        path = layout.path_of(importer)
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            details = graph.get_import_details(importer=importer, imported=imported)
            for detail in details:
                line = detail["line_number"]
                if imported in modules:
                    yield Edge(importer, imported, imported, path, line, True)
                    continue

                names = [
                    (module, name) for module, name in _names_at(path, line, importer)
                    if name.split(".")[0] == imported.split(".")[0]
                ]
                # Unread statements are still judged, by their top-level name.
                for module, name in names or [(imported, imported)]:
                    yield Edge(importer, name, module, path, line, False)


def _names_at(path: Path, line: int, importer: str) -> list[tuple[str, str]]:
    """(module, full name) of each name the import statement at `line` brings."""
    found = []
    for node in _statements_at(str(path), line):
        found.extend(_imported_names(node, importer, is_package=False))
    return found


@lru_cache(maxsize=4096)
def _lines(path: str) -> tuple[str, ...]:
    try:
        return tuple(read_source(Path(path)).splitlines())
    except Unreadable:
        # Reported where the module's own text is read; its names stay
        # judged by their top-level package.
        return ()


def _statements_at(path: str, line: int) -> list[ast.Import | ast.ImportFrom]:
    lines = _lines(path)
    # Indented under a dummy block, so a statement nested in a function or an
    # `if TYPE_CHECKING:` parses on its own, continuation lines included.
    for end in range(line, min(line + 60, len(lines)) + 1):
        chunk = "\n".join(" " + text for text in lines[line - 1:end])
        try:
            tree = ast.parse("if True:\n" + chunk)
        except SyntaxError:
            continue
        block = tree.body[0]
        assert isinstance(block, ast.If)
        return [n for n in block.body if isinstance(n, ast.Import | ast.ImportFrom)]
    return []


def _imported_names(
    node: ast.Import | ast.ImportFrom, importer: str, *, is_package: bool
) -> list[tuple[str, str]]:
    if isinstance(node, ast.Import):
        return [(alias.name, alias.name) for alias in node.names]

    module = _absolute(node.module or "", node.level, importer, is_package)
    return [
        (module, module if alias.name == "*" else f"{module}.{alias.name}")
        for alias in node.names
    ]


def _absolute(module: str, level: int, importer: str, is_package: bool) -> str:
    if level == 0:
        return module

    parts = importer.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, module] if module else base)


def _orphans(layout: Layout, modules: set[str]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top in layout.tops:
        for folder, dirs, files in os.walk(layout.root / top):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
            for file in files:
                if not file.endswith(".py") or file.startswith("."):
                    continue

                path = Path(folder) / file
                name = _module_name(layout, path)
                if name not in modules:
                    found[name] = path
    return found


def _module_name(layout: Layout, path: Path) -> str:
    parts = list(path.relative_to(layout.root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _read_extras(
    layout: Layout,
    module: str,
    path: Path,
    modules: set[str],
    violations: list[Violation],
    *,
    all_imports: bool,
) -> list[Edge]:
    """Stars and dynamic imports of a module; every import of an orphan."""
    try:
        text = read_source(path)
    except Unreadable as error:
        violations.append(_unreadable_violation(layout, path, error.reason))
        return []

    if not all_imports and not _NEEDS_AST.search(text):
        return []

    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as error:
        violations.append(_syntax_violation(layout, path, error))
        return []

    where = _owner_label(layout, module)
    shown = layout.shown(path)
    is_package = path.name == "__init__.py"
    edges: list[Edge] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            source = _absolute(node.module or "", node.level, module, is_package)
            violations.append(Violation(
                "star-import", where, f"{shown}:{node.lineno}",
                f"{module} imports * from {source}", f"{module} -> {source}",
            ))

        if all_imports and isinstance(node, ast.Import | ast.ImportFrom):
            for imported_module, name in _imported_names(node, module,
                                                         is_package=is_package):
                edges.append(_edge(layout, module, imported_module, name, path,
                                   node.lineno, modules))

    importers = _DynamicImporters(tree)
    for node in importers.calls:
        literal = _literal_name(node)
        if literal is None:
            expression = ast.unparse(node)
            violations.append(Violation(
                "dynamic-import", where, f"{shown}:{node.lineno}",
                f"{module} imports a module whose name is not a literal: "
                f"{expression}", f"{module}: {expression}",
            ))
            continue

        edge = _edge(layout, module, literal, literal, path, node.lineno, modules)
        edges.append(dataclasses.replace(edge, dynamic=True))
    for node in importers.handed_around:
        expression = ast.unparse(node)
        violations.append(Violation(
            "dynamic-import", where, f"{shown}:{node.lineno}",
            f"{module} hands a dynamic importer around uncalled ({expression}), "
            "so the modules it imports cannot be read", f"{module}: {expression}",
        ))
    return edges


def _edge(
    layout: Layout, importer: str, module: str, name: str, path: Path, line: int,
    modules: set[str],
) -> Edge:
    if not layout.is_internal(name):
        return Edge(importer, name, module, path, line, False)

    # `from package import name`: the module itself when `name` is one.
    target = name if name in modules else module
    return Edge(importer, target, target, path, line, True)


class _DynamicImporters:
    """Every use of a function that imports a module by name, under any name.

    Known by their own names (`import_module`, `__import__`, as a name or an
    attribute of anything: `importlib.__import__`, `il.import_module`), and
    by the names the module gives them: `from importlib import import_module
    as load`, `load = importlib.import_module`, `load = getattr(importlib,
    "import_module")`. A call of one is `calls`; any other use of one (an
    argument, a value returned or stored) is `handed_around`: what it will
    import cannot be read. Assignments that only rename one are neither.
    """

    def __init__(self, tree: ast.AST):
        self.aliases = set(_IMPORTERS)
        self.calls: list[ast.Call] = []
        self.handed_around: list[ast.expr] = []
        renames = self._collect_aliases(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and self._denotes(node.func):
                self.calls.append(node)
        called = {id(call.func) for call in self.calls}
        for node in ast.walk(tree):
            if (isinstance(node, ast.expr) and id(node) not in called
                    and id(node) not in renames and self._denotes(node)
                    and not self._is_binding(node)):
                self.handed_around.append(node)

    def _collect_aliases(self, tree: ast.AST) -> set[int]:
        """Names bound to an importer; the ids of the renaming expressions."""
        renames: set[int] = set()
        changed = True
        while changed:
            changed = False
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (
                        node.module in _IMPORTER_MODULES):
                    for alias in node.names:
                        if alias.name in _IMPORTERS:
                            bound = alias.asname or alias.name
                            changed |= bound not in self.aliases
                            self.aliases.add(bound)
                elif isinstance(node, ast.Assign | ast.AnnAssign) and (
                        node.value is not None and self._denotes(node.value)):
                    targets = node.targets if isinstance(node, ast.Assign) \
                        else [node.target]
                    names = [t.id for t in targets if isinstance(t, ast.Name)]
                    if len(names) == len(targets):
                        renames.add(id(node.value))
                        for name in names:
                            changed |= name not in self.aliases
                            self.aliases.add(name)
        return renames

    def _denotes(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.aliases
        if isinstance(node, ast.Attribute):
            return node.attr in _IMPORTERS
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "getattr" and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in _IMPORTERS)

    def _is_binding(self, node: ast.expr) -> bool:
        # A name being bound or deleted is not a use of what it names.
        return isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load)


def _literal_name(node: ast.Call) -> str | None:
    if not node.args:
        return None

    first = node.args[0]
    if not isinstance(first, ast.Constant) or not isinstance(first.value, str):
        return None
    if first.value.startswith("."):
        return None
    return first.value


def _syntax_violation(layout: Layout, path: Path, error: SyntaxError) -> Violation:
    shown = layout.shown(path)
    module = _module_name(layout, path)
    return Violation(
        "syntax-error", _owner_label(layout, module), f"{shown}:{error.lineno or 1}",
        f"{shown} does not parse: {error.msg}", module,
    )


def _unreadable_violation(layout: Layout, path: Path, reason: str) -> Violation:
    shown = layout.shown(path)
    module = _module_name(layout, path)
    return Violation(
        "unreadable", _owner_label(layout, module), f"{shown}:1",
        f"{shown} cannot be read: {reason}", module,
    )


def _unparsable(layout: Layout) -> CodeResult:
    violations = []
    count = 0
    for top in layout.tops:
        for path in sorted((layout.root / top).rglob("*.py")):
            count += 1
            try:
                ast.parse(read_source(path), filename=str(path))
            except Unreadable as error:
                violations.append(_unreadable_violation(layout, path, error.reason))
            except SyntaxError as error:
                violations.append(_syntax_violation(layout, path, error))
    note = ("Import rules were not evaluated: a module that does not parse or "
            "cannot be read leaves a hole in the import graph. Fix those and "
            "check again.")
    return CodeResult(violations, count, [], [note])


def _owner_label(layout: Layout, module: str) -> str:
    context = layout.context_of(module)
    if context is not None:
        return context.name
    return HOST if layout.is_host(module) else NO_CONTEXT


def _ownership(
    layout: Layout, modules: set[str], orphans: dict[str, Path]
) -> list[Violation]:
    found = []
    for module in sorted(modules | set(orphans)):
        path = orphans.get(module) or layout.path_of(module)
        shown = layout.shown(path)
        context = layout.context_of(module)
        host = context is None and layout.is_host(module)
        if context is None and not host:
            found.append(Violation(
                "no-context", NO_CONTEXT, f"{shown}:1",
                f"{module} belongs to no context: it lies under no context's "
                "package and no [check] host pattern names it", module,
            ))

        if module in orphans and not host:
            found.append(Violation(
                "no-init", context.name if context else NO_CONTEXT, f"{shown}:1",
                f"{shown} lies in a folder without __init__.py; add one, or "
                "declare the file a host script in [check] host", module,
            ))

        if context is not None and not layout.roles_of(module, context):
            name = layout.relative_name(module, context)
            found.append(Violation(
                "no-role", context.name, f"{shown}:1",
                f"{module} has no role: no [check.roles] pattern matches "
                f"{name!r}", module,
            ))
    return found


def _judge(layout: Layout, edge: Edge) -> list[Violation]:
    source = layout.context_of(edge.importer)
    where = _owner_label(layout, edge.importer)
    location = f"{layout.shown(edge.path)}:{edge.line}"
    how = " (through importlib)" if edge.dynamic else ""
    found = []
    if edge.internal:
        target = layout.context_of(edge.imported)
        if (target is not None and target is not source
                and not layout.is_public(edge.imported, target)):
            found.append(Violation(
                "internal-import", where, location,
                f"{edge.importer} imports {edge.imported}{how}, internal to "
                f"{target.name}; only {target.api} and {target.events} are public",
                f"{edge.importer} -> {edge.imported}", target.name,
            ))
        elif target is None and source is not None and layout.is_host(edge.imported):
            found.append(Violation(
                "host-import", where, location,
                f"{edge.importer} imports the host module {edge.imported}{how}",
                f"{edge.importer} -> {edge.imported}",
            ))

    if source is None or layout.shared.match(edge.imported) or layout.shared.match(
            edge.module):
        return found

    for role in layout.roles_of(edge.importer, source):
        pattern = role.forbid.match(edge.imported) or role.forbid.match(edge.module)
        if pattern is not None:
            found.append(Violation(
                "forbidden-import", where, location,
                f"{edge.importer} imports {edge.imported}{how}; its role "
                f"{role.role.name} forbids {pattern}",
                f"{edge.importer} -> {edge.module}",
            ))
    return found


def _unused_patterns(layout: Layout, edges: list[Edge]) -> list[Violation]:
    imported = sorted({name for e in edges for name in (e.imported, e.module)})
    unused: list[tuple[str, str, str]] = []
    sources: list[tuple[str, PatternSet]] = [("[check] host", layout.host)] + [
        (f"[check.roles.{r.role.name}] modules", r.modules) for r in layout.roles
    ]
    for where, patterns in sources:
        unused += [(where, p, "matches no module") for p in patterns.unused()]
    unused += [
        ("[check] shared", pattern, "matches nothing any module imports")
        for pattern in layout.shared.patterns
        if not any(compile_pattern(pattern).match(name) for name in imported)
    ]
    for role in layout.roles:
        unused += [
            (f"[check.roles.{role.role.name}] forbid", pattern,
             "names no module that the code imports or that is installed here")
            for pattern in role.forbid.patterns
            if not names_a_module(pattern, imported)
        ]

    text = layout.manifest.path.read_text(encoding="utf-8").splitlines()
    found = []
    for where, pattern, why in unused:
        line = _manifest_line(text, where.split(" ")[0], pattern)
        found.append(Violation(
            "unused-pattern", MANIFEST, f"{layout.manifest.path.name}:{line}",
            f"{where} pattern {pattern!r} {why}, so it guards nothing "
            "(a typo?)", f"{where}: {pattern}",
        ))
    return found


def _manifest_line(text: list[str], section: str, pattern: str) -> int:
    """The line of `pattern` in its section of the manifest (1 if not found)."""
    start = next((n for n, row in enumerate(text, 1) if row.strip() == section), 1)
    return next((n for n, row in enumerate(text, 1)
                 if n >= start and f'"{pattern}"' in row), 1)


def _deduplicated(violations: list[Violation]) -> list[Violation]:
    seen: set[tuple[str, str, str]] = set()
    kept = []
    for v in violations:
        key = (v.rule, v.location, v.subject)
        if key not in seen:
            seen.add(key)
            kept.append(v)
    return kept
