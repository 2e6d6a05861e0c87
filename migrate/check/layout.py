"""Where the checked code lives, and who owns each module and table.

The layout is read from the manifest alone, without importing the checked
code: the package root is the folder that holds the contexts' top-level
package, found beside the manifest or one folder up (so a copy of a
monolith with its manifest inside checks as the original does). Every
package, api and events module the manifest names must exist there, or the
manifest is wrong and `ManifestError` names the entry (exit 2). A context
that `migrate finish` moved out of the monolith is a service of its own and
is left out: the check holds the monolith's edges.
"""

from __future__ import annotations

import dataclasses
import os
from functools import cached_property
from pathlib import Path

from migrate.check.patterns import PatternSet, PatternSyntaxError
from migrate.errors import ManifestError
from migrate.manifest import Context, Manifest, Role

PACKAGE_INIT = "__init__"


@dataclasses.dataclass
class RolePatterns:
    role: Role
    modules: PatternSet
    forbid: PatternSet


class Layout:
    def __init__(self, manifest: Manifest, root: Path | None = None):
        self.manifest = manifest
        self.tops = sorted(
            {c.package.split(".")[0] for c in manifest.hosted.values()}
        )
        self.root = (root or _find_root(manifest, self.tops)).resolve()
        self.host = _patterns(manifest, "[check] host", manifest.boundaries.host)
        self.shared = _patterns(manifest, "[check] shared", manifest.boundaries.shared)
        self.roles = [
            RolePatterns(
                role,
                _patterns(manifest, f"[check.roles.{role.name}] modules", role.modules),
                _patterns(manifest, f"[check.roles.{role.name}] forbid", role.forbid),
            )
            for role in manifest.boundaries.roles
        ]
        self._require_modules()

    @cached_property
    def _packages(self) -> list[tuple[str, Context]]:
        # Longest package first, so a nested context package wins.
        return sorted(
            ((c.package, c) for c in self.manifest.hosted.values()),
            key=lambda pc: -len(pc[0]),
        )

    def context_of(self, module: str) -> Context | None:
        for package, context in self._packages:
            if module == package or module.startswith(package + "."):
                return context
        return None

    def is_host(self, module: str) -> bool:
        return self.host.match(module) is not None

    def is_internal(self, module: str) -> bool:
        return module.split(".")[0] in self.tops

    def is_public(self, module: str, context: Context) -> bool:
        return any(
            module == public or module.startswith(public + ".")
            for public in (context.api, context.events)
        )

    def relative_name(self, module: str, context: Context) -> str:
        if module == context.package:
            return PACKAGE_INIT
        return module[len(context.package) + 1:]

    def roles_of(self, module: str, context: Context) -> list[RolePatterns]:
        name = self.relative_name(module, context)
        return [
            r for r in self.roles
            if (not r.role.contexts or context.name in r.role.contexts)
            and r.modules.match(name) is not None
        ]

    def path_of(self, module: str) -> Path:
        base = self.root.joinpath(*module.split("."))
        if (base / "__init__.py").exists():
            return base / "__init__.py"
        return base.with_suffix(".py")

    def shown(self, path: Path) -> str:
        """A path as a report shows it: relative to the root, with slashes."""
        # The file's own name first: a symlink is shown where it lies.
        for candidate in (Path(os.path.abspath(path)), path.resolve()):
            try:
                return candidate.relative_to(self.root).as_posix()
            except ValueError:
                continue
        return str(path)

    def _require_modules(self) -> None:
        for context in self.manifest.hosted.values():
            where = f"{self.manifest.path}: context {context.name}"
            package = self.root.joinpath(*context.package.split("."))
            if not (package / "__init__.py").is_file():
                raise ManifestError(
                    f"{where}: package {context.package!r} does not exist "
                    f"(no {self.shown(package / '__init__.py')} under {self.root})"
                )

            for key in ("api", "events"):
                module = getattr(context, key)
                if self.context_of(module) is not context:
                    raise ManifestError(
                        f"{where}: {key} module {module!r} lies outside its "
                        f"package {context.package!r}"
                    )
                if not self._exists(module):
                    raise ManifestError(
                        f"{where}: {key} module {module!r} does not exist "
                        f"under {self.root}"
                    )

    def _exists(self, module: str) -> bool:
        base = self.root.joinpath(*module.split("."))
        return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _find_root(manifest: Manifest, tops: list[str]) -> Path:
    folder = manifest.path.resolve().parent
    for candidate in (folder, folder.parent):
        if all((candidate / top / "__init__.py").is_file() for top in tops):
            return candidate

    raise ManifestError(
        f"{manifest.path}: package {tops[0]!r} does not exist beside the manifest "
        f"or one folder up (looked in {folder} and {folder.parent})"
    )


def _patterns(manifest: Manifest, where: str, patterns: tuple[str, ...]) -> PatternSet:
    try:
        return PatternSet(patterns)
    except PatternSyntaxError as error:
        raise ManifestError(f"{manifest.path}: {where}: {error}") from None
