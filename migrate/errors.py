"""Every failure a user of the kit can fix, drawn once.

MigrateError                 a user-fixable problem; the CLI prints one line
├── ManifestError            the context manifest is wrong (exit 2)
├── ConfigurationError       a setting from the environment is wrong (exit 2)
├── UnknownContext           a context name that the manifest lacks
├── AlreadyExtracted         an extraction exists and --force was not given
├── NotExtracted             a command needs an extracted context
├── SystemNotRunning         a command needs `migrate up` first
├── ShiftRefused             a shift that the rules forbid right now
├── SyncBehind               a copy did not catch up with its writer in time
├── ParityError              a copy that does not match its source
└── UnreadableParityRecord   the kept record of a copy's last check is unreadable
"""

from __future__ import annotations


class MigrateError(Exception):
    exit_code = 1


class ManifestError(MigrateError):
    exit_code = 2


class ConfigurationError(MigrateError):
    exit_code = 2


class UnknownContext(MigrateError):
    def __init__(self, name: str, known: list[str]):
        super().__init__(
            f"there is no context {name!r}; the contexts are {', '.join(sorted(known))}"
        )
        self.name = name
        self.known = known


class AlreadyExtracted(MigrateError):
    pass


class NotExtracted(MigrateError):
    pass


class SystemNotRunning(MigrateError):
    pass


class ShiftRefused(MigrateError):
    pass


class SyncBehind(MigrateError):
    pass


class ParityError(MigrateError):
    pass


class UnreadableParityRecord(MigrateError):
    def __init__(self, context: str, path: object, problem: str):
        super().__init__(
            f"{context}'s parity record {path} cannot be read ({problem}); run "
            f"`migrate verify {context}` to check the copy again and keep a new one"
        )
        self.context = context
        self.path = path
        self.problem = problem
