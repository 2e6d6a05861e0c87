"""Every failure `migrate deploy` raises, drawn once.

DeployError
├── PackagingError     a module or distribution a package cannot take
├── TemplateRejected   a template that translation or lint finds wrong
└── RoutingInvalid     routing state that nginx or ALB cannot be given
"""

from __future__ import annotations

from collections.abc import Sequence

from migrate.errors import MigrateError


class DeployError(MigrateError):
    """Root of the deploy package's errors."""


class PackagingError(DeployError):
    def __init__(self, value: object, rule: str):
        super().__init__(f"{value}: {rule}")
        self.value = value
        self.rule = rule


class TemplateRejected(DeployError):
    def __init__(self, template: str, findings: Sequence[object]):
        shown = "\n".join(f"  {finding}" for finding in findings)
        super().__init__(
            f"{template} has {len(findings)} finding(s) in translation and "
            f"lint:\n{shown}"
        )
        self.template = template
        self.findings = list(findings)


class RoutingInvalid(DeployError):
    def __init__(self, value: object, rule: str):
        super().__init__(f"{value!r}: {rule}")
        self.value = value
        self.rule = rule
