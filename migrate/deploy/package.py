"""Reproducible packages: one zip per function, and the service's artifact.

A function's zip holds what its handler needs and nothing else:

- the project's modules it imports, found by reading the source (every
  `import`, including those inside functions, but not those under
  `if TYPE_CHECKING:`), with the `__init__.py` of every package on the way;
- the installed distributions those modules import, with everything they
  require in turn (markers evaluated for Python 3.11 on Linux), copied file
  by file from this environment. Left out are the distributions the Lambda
  Python runtime ships (boto3 and what it needs); added is powertools'
  `tracer` extra (aws-xray-sdk), which the handlers' Tracer needs on AWS.

The service's artifact holds the extracted service folder (its Nameko
module, config.yaml, Alembic environment), the project modules that it and
every module the manifest names for the context import, the manifest
itself, and a `requirements.txt` pinning each distribution they need to the
version installed here: the service runs where pip can install.

Reproducible means the same inputs give the same bytes: entries in name
order, every timestamp 1980-01-01, the same permissions, no byte code, and
none of the files an installer writes differently each time (RECORD,
INSTALLER, REQUESTED, direct_url.json).

What it does not do: build for another platform. Compiled extensions are
copied as installed here, so a zip built on x86-64 Linux with CPython 3.11
suits Lambda's python3.11 on x86_64 (which the template asks for), and
nothing else; the build report lists them.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.metadata as metadata
import logging
import os
import re
import sys
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

from migrate.deploy.errors import PackagingError
from migrate.deploy.functions import Function, functions_of
from migrate.extract.generate import Extraction
from migrate.manifest import Context, Manifest
from migrate.settings import PROJECT_ROOT

_log = logging.getLogger(__name__)

# The Lambda Python runtime ships these (boto3 and its requirements).
PROVIDED_BY_RUNTIME = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six",
     "urllib3"}
)  # fmt: skip
# Extras a package needs beyond a distribution's plain requirements.
EXTRAS: Mapping[str, tuple[str, ...]] = {"aws-lambda-powertools": ("tracer",)}
PROJECT_PACKAGES = ("migrate", "monolith")
_EPOCH = (1980, 1, 1, 0, 0, 0)
_UNSTABLE = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
_COMPILED = (".so", ".pyd")


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A built zip: where, its SHA-256, what went in."""

    path: Path
    sha256: str
    files: int
    distributions: tuple[str, ...]
    compiled: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Build:
    context: str
    functions: tuple[Artifact, ...]
    service: Artifact | None


def build(
    manifest: Manifest, context: str, out: Path, extraction: Extraction | None
) -> Build:
    """Every function's zip and, when the context is extracted, the
    service's artifact, written into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    functions = tuple(function_zip(f, out) for f in functions_of(manifest, context))
    service = None
    if extraction is not None:
        service = service_zip(manifest.context(context), manifest, extraction, out)
    return Build(context, functions, service)


def function_zip(function: Function, out: Path) -> Artifact:
    """The zip of one function: its modules and their distributions."""
    modules, imported = module_closure([function.module])
    distributions = distribution_closure(imported, leave_out=PROVIDED_BY_RUNTIME)
    entries: dict[str, Path | bytes] = {
        _relative(path): path for path in modules.values()
    }
    for name in distributions:
        entries.update(_distribution_files(name))
    return _write_zip(out / function.archive, entries, distributions)


def service_zip(
    context: Context, manifest: Manifest, extraction: Extraction, out: Path
) -> Artifact:
    """The service's artifact: its folder, its modules, pinned requirements."""
    references = [
        context.package, context.api, context.events, context.routes,
        context.metadata, context.unit_of_work, context.handlers, context.replica,
        # A service shaped otherwise than the monolith ships its own tables.
        context.service_metadata, context.service_unit_of_work,
        *(effect.function for effect in context.side_effects),
    ]  # fmt: skip
    roots = [r.partition(":")[0] for r in references if r]
    host = extraction.folder / f"{extraction.module}.py"
    modules, imported = module_closure(roots, extra_files=[host])
    distributions = distribution_closure(imported)
    entries: dict[str, Path | bytes] = {
        _relative(path): path for path in modules.values()
    }
    entries[_relative(manifest.path)] = manifest.path
    for path in sorted(extraction.folder.rglob("*")):
        if path.is_file() and _shipped(path):
            entries[path.relative_to(extraction.folder).as_posix()] = path
    pins = "".join(
        f"{name}=={metadata.version(name)}\n" for name in sorted(distributions)
    )
    entries["requirements.txt"] = pins.encode()
    return _write_zip(out / f"{context.name}-service.zip", entries, distributions)


def module_closure(
    roots: Iterable[str], extra_files: Iterable[Path] = ()
) -> tuple[dict[str, Path], set[str]]:
    """Project modules reachable by import from `roots` (name -> file), and
    the top-level names of the other, non-standard modules they import."""
    modules: dict[str, Path] = {}
    outside: set[str] = set()
    pending: list[tuple[str | None, Path | None]] = [(name, None) for name in roots]
    pending += [(None, path) for path in extra_files]
    while pending:
        name, path = pending.pop()
        if name is not None:
            if name in modules:
                continue

            path = _project_file(name)
            if path is None:
                _note_outside(name, outside)
                continue

            modules[name] = path
            pending += [(parent, None) for parent in _parents(name)]
        assert path is not None
        package = _package_of(name, path)
        for imported in _imports(path, package):
            pending.append((imported, None))
    return modules, outside


def distribution_closure(
    top_levels: Iterable[str], leave_out: frozenset[str] = frozenset()
) -> set[str]:
    """Installed distributions providing `top_levels`, with everything they
    require, less `leave_out` and what only they require."""
    providers = metadata.packages_distributions()
    pending: list[tuple[str, tuple[str, ...]]] = []
    for top in sorted(top_levels):
        found = providers.get(top)
        if not found:
            raise PackagingError(
                f"module {top}", "is imported but no installed distribution has it"
            )

        pending += [(_canonical(d), ()) for d in found]
    found_names: set[str] = set()
    while pending:
        name, extras = pending.pop()
        if name in leave_out or name in found_names:
            continue

        found_names.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            raise PackagingError(
                f"distribution {name}", "is required but not installed"
            ) from None

        wanted = extras + EXTRAS.get(name, ())
        for line in requires:
            requirement = Requirement(line)
            if _applies(requirement, wanted):
                pending.append(
                    (_canonical(requirement.name), tuple(sorted(requirement.extras)))
                )
    return found_names


def _applies(requirement: Requirement, extras: tuple[str, ...]) -> bool:
    if requirement.marker is None:
        return True

    environment = {key: str(value) for key, value in default_environment().items()}
    environment.update(python_version="3.11", sys_platform="linux")
    choices = extras or ("",)
    return any(
        requirement.marker.evaluate({**environment, "extra": extra})
        for extra in choices
    )


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project_file(name: str) -> Path | None:
    if name.split(".")[0] not in PROJECT_PACKAGES:
        return None

    base = PROJECT_ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts))]


def _package_of(name: str | None, path: Path) -> str | None:
    if name is None:
        return None

    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _note_outside(name: str, outside: set[str]) -> None:
    top = name.split(".")[0]
    if top in sys.stdlib_module_names or top in PROJECT_PACKAGES or not top:
        return

    outside.add(top)


def _imports(path: Path, package: str | None) -> list[str]:
    tree = ast.parse(path.read_bytes(), filename=str(path))
    found: list[str] = []
    for node in _walk_runtime(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package, path)
            found.append(base)
            # `from package import module` imports the module as well.
            found += [f"{base}.{alias.name}" for alias in node.names]
    return found


def _absolute(node: ast.ImportFrom, package: str | None, path: Path) -> str:
    if not node.level:
        return node.module or ""

    if package is None:
        raise PackagingError(path, "a relative import outside a package")

    parts = package.split(".")
    if node.level - 1 > len(parts):
        raise PackagingError(path, f"relative import beyond {package}")

    base = parts[: len(parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _walk_runtime(tree: ast.AST) -> Iterable[ast.AST]:
    """Every node, except the bodies of `if TYPE_CHECKING:`."""
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending += node.orelse
            continue

        pending += list(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"

    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _relative(path: Path) -> str:
    return path.relative_to(PROJECT_ROOT).as_posix()


def _shipped(path: Path) -> bool:
    return (
        "__pycache__" not in path.parts
        and path.suffix not in (".pyc", ".db", ".sqlite")
        and not path.name.endswith((".db-wal", ".db-shm"))
    )


def _distribution_files(name: str) -> dict[str, Path]:
    distribution = metadata.distribution(name)
    entries: dict[str, Path] = {}
    for file in distribution.files or []:
        relative = file.as_posix()
        if relative.startswith("..") or "__pycache__" in file.parts:
            continue

        if file.suffix == ".pyc" or file.name in _UNSTABLE:
            continue

        located = Path(str(distribution.locate_file(file)))
        if located.is_file():
            entries[relative] = located
    return entries


def _write_zip(
    target: Path, entries: Mapping[str, Path | bytes], distributions: Iterable[str]
) -> Artifact:
    draft = target.with_suffix(".zip.tmp")
    compiled = []
    with zipfile.ZipFile(draft, "w") as archive:
        for name in sorted(entries):
            source = entries[name]
            data = source if isinstance(source, bytes) else source.read_bytes()
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            archive.writestr(info, data, compresslevel=9)
            if name.endswith(_COMPILED):
                compiled.append(name)
    os.replace(draft, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    _log.info("wrote %s (%d files, sha256 %s)", target, len(entries), digest)
    return Artifact(
        target, digest, len(entries), tuple(sorted(distributions)), tuple(compiled)
    )
