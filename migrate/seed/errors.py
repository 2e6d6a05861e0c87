"""Every failure while gathering seed data, drawn once.

    MigrateError        the kit's root: the CLI prints one line, exits non-zero
    └── SeedError       seed data that cannot be had
        ├── DumpError   a dump that is missing, unreadable or malformed
        └── SizeError   a synthetic data set asked for an impossible size

Each carries the offending value; its message names it and the rule it broke.
"""

from __future__ import annotations

from migrate.errors import MigrateError


class SeedError(MigrateError):
    """Root of the seed errors: input the operator can fix."""


class DumpError(SeedError):
    """A dump the reader refuses, with the 1-based line where it went wrong.

    `line` is None when the problem is the file itself (missing, unreadable).
    """

    def __init__(self, path: str, line: int | None, reason: str):
        self.path = path
        self.line = line
        self.reason = reason
        where = path if line is None else f"{path} line {line}"
        super().__init__(f"{where}: {reason}")


class SizeError(SeedError):
    def __init__(self, orders: object):
        self.orders = orders
        super().__init__(
            f"{orders!r} orders: a synthetic data set takes a whole number "
            "of orders, 0 or more"
        )
