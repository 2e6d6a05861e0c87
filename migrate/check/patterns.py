"""Patterns over dotted module names, as the manifest writes them.

`*` stands for any part of one name (`monolith.*.domain`, `dom*`), `**` for
any number of whole names, none included (`sqlalchemy.**` is `sqlalchemy`
and everything under it). Nothing else is special. A `PatternSet` remembers
which of its patterns ever matched, so the check can report a rule that
guards nothing because its pattern never matches a module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NAME = re.compile(r"^[A-Za-z0-9_*?]+$")


class PatternSyntaxError(ValueError):
    def __init__(self, pattern: str, reason: str):
        super().__init__(f"pattern {pattern!r}: {reason}")
        self.pattern = pattern


def compile_pattern(pattern: str) -> re.Pattern[str]:
    parts = pattern.split(".")
    regex = ""
    joined = False
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            if not last:
                regex += (r"\." if joined else "") + r"(?:[^.]+\.)*"
                joined = False
            else:
                regex += r"(?:\.[^.]+)*" if joined else r".*"
            continue

        if not _NAME.match(part):
            raise PatternSyntaxError(
                pattern, f"{part!r} is not a module name (letters, digits, _, *)"
            )

        segment = re.escape(part).replace(r"\*", "[^.]*").replace(r"\?", "[^.]")
        regex += (r"\." if joined else "") + segment
        joined = True
    return re.compile(f"^{regex}$")


class PatternSet:
    """Patterns that say which of them matched anything so far."""

    def __init__(self, patterns: Iterable[str]):
        self.patterns = tuple(patterns)
        self._compiled = [(p, compile_pattern(p)) for p in self.patterns]
        self.used: set[str] = set()

    def match(self, name: str) -> str | None:
        """The first pattern that matches `name`, remembered as used."""
        for pattern, regex in self._compiled:
            if regex.match(name):
                self.used.add(pattern)
                return pattern
        return None

    def unused(self) -> list[str]:
        return [p for p in self.patterns if p not in self.used]

    def __bool__(self) -> bool:
        return bool(self.patterns)
