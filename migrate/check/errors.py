"""What can stop the boundary check, drawn once.

    CheckError                    (migrate.errors.MigrateError)
    ├── BaselineError             the baseline file is unreadable (exit 2)
    ├── IntrospectionFailed       the contexts' metadata could not be read
    │                             in the child process (exit 2)
    ├── Unreadable                a source file that cannot be read: caught
    │                             and reported as an `unreadable` violation
    └── CrossContextStatement     the SQL guard, asked to raise, refused a
                                  statement that crosses contexts

A malformed manifest raises `migrate.errors.ManifestError` (exit 2), naming
the entry. Violations found in the code are not errors: they are the report.
"""

from __future__ import annotations

from pathlib import Path

from migrate.errors import MigrateError


class CheckError(MigrateError):
    pass


class BaselineError(CheckError):
    exit_code = 2

    def __init__(self, path: Path, reason: str):
        super().__init__(f"baseline {path}: {reason}")
        self.path = path


class CrossContextStatement(CheckError):
    def __init__(self, rule: str, message: str, location: str):
        super().__init__(f"{rule} at {location}: {message}")
        self.rule = rule
        self.location = location
