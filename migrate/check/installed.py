"""Whether a `forbid` pattern can ever match: does it name a module here?

A role's `forbid` patterns name what its modules may not import, and a clean
codebase imports none of it, so "matched an import" cannot tell a working
rule from a misspelt one (`flsk.**` forbids nothing, silently). A pattern is
alive when it matches a name the checked code imports anywhere (the host's
`flask` counts for the domain's `flask.**`), or a module that the
interpreter running the check could import: a top-level module on
`sys.path` or of the standard library, then its submodules found on disk.

Nothing is imported to find out: `importlib.util.find_spec` on a top-level
name reads the path, and submodules are looked up as files and folders
under the package's search locations. A name below a plain module (`x.y.Z`
where `x/y.py` exists) is taken for an attribute of it and counts as found,
since only importing `x.y` could say otherwise; so does a name that a
package's `__init__.py` mentions (`sqlalchemy.orm.Session`).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import pkgutil
import re
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from migrate.check.patterns import compile_pattern

_SUFFIXES = tuple(importlib.machinery.all_suffixes())


def names_a_module(pattern: str, imported: Iterable[str]) -> bool:
    """True when `pattern` matches an imported name or an installed module."""
    regex = compile_pattern(pattern)
    if any(regex.match(name) for name in imported):
        return True

    parts = pattern.split(".")
    return any(
        _below(location, parts[1:])
        for location in _top_level_locations(parts[0])
    )


def _top_level_locations(part: str) -> list[Path | None]:
    """Where each top-level module matching `part` lives: its folder for a
    package, None for a plain or built-in module."""
    if part == "**":
        return [None]

    names = [part] if "*" not in part and "?" not in part else [
        name for name in _top_level_names() if _part(part).match(name)
    ]
    found: list[Path | None] = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec is None:
            continue
        locations = list(spec.submodule_search_locations or [])
        if locations:
            found.extend(Path(location) for location in locations)
        else:
            found.append(None)
    return found


def _below(folder: Path | None, parts: list[str]) -> bool:
    if not parts or parts[0] == "**":
        return True

    if folder is None:
        # A plain module: what follows names its attributes.
        return True

    wanted = _part(parts[0])
    for name, child in _children(folder):
        if wanted.match(name) and _below(child, parts[1:]):
            return True
    return _defined_in_init(folder, parts[0])


def _defined_in_init(folder: Path, name: str) -> bool:
    """A name the package's `__init__.py` mentions, such as a class it
    imports from a submodule (`sqlalchemy.orm.Session`)."""
    if not name.isidentifier():
        return False

    try:
        text = (folder / "__init__.py").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(rf"\b{re.escape(name)}\b", text) is not None


def _children(folder: Path) -> list[tuple[str, Path | None]]:
    """Submodules of a package folder: (name, folder or None for a file)."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []

    found: list[tuple[str, Path | None]] = []
    for entry in entries:
        if entry.is_dir() and entry.name.isidentifier():
            found.append((entry.name, entry))
        elif entry.name.endswith(_SUFFIXES):
            found.append((entry.name.split(".", 1)[0], None))
    return found


@cache
def _top_level_names() -> frozenset[str]:
    on_path = {module.name for module in pkgutil.iter_modules()}
    return frozenset(on_path | set(sys.stdlib_module_names)
                     | set(sys.builtin_module_names))


def _part(part: str) -> re.Pattern[str]:
    return compile_pattern(part)
