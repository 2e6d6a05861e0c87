"""A SAM template checked the way AWS would: translated, then linted.

`check` packages the template in memory as `sam deploy` would (a local
`CodeUri` becomes an S3 location), translates it to plain CloudFormation
with aws-sam-translator, and lints the result with cfn-lint's own rules plus
the kit's (`migrate.deploy.rules`): a queue feeding a function with a
visibility timeout under six times the function's timeout, a subscription
whose queue policy does not let its topic send, a wildcard IAM action, a
secret written into the template. cfn-lint has to see the translated
template: it no longer expands SAM resources itself, and a misspelt
`ReportBatchItemFailures` or a short visibility timeout would pass
unnoticed in the SAM form.

Findings are errors and warnings; informational ones only when asked. A
template the translator refuses yields its causes as findings of rule
`SAM`. Everything runs offline: translation needs a region name, never a
connection.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

REGION = "us-east-1"
ARTIFACT_BUCKET = "migrate-deploy-artifacts"
_SEVERITIES = {"error", "warning"}


@dataclasses.dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule} {self.severity} at {self.path}: {self.message}"


def translate(template: dict[str, Any], region: str = REGION) -> dict[str, Any]:
    """The SAM template as plain CloudFormation; raises the translator's
    `InvalidDocumentException` for a template it refuses."""
    import boto3
    from samtranslator.metrics.metrics import Metrics
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    packaged = _packaged(template)
    # A session with a region and no credentials: the translator only wants
    # the region's name and partition.
    session = boto3.session.Session(region_name=region)
    # The translator counts usage into metrics nobody reads here; publishing
    # them to its do-nothing publisher keeps it from warning about them.
    metrics = Metrics("migrate-deploy")
    translator = Translator(None, Parser(), boto_session=session, metrics=metrics)
    try:
        translated: dict[str, Any] = translator.translate(
            packaged, parameter_values={}, get_managed_policy_map=lambda: {}
        )
    finally:
        metrics.publish()
    return translated


def check(
    template: dict[str, Any], region: str = REGION, informational: bool = False
) -> list[Finding]:
    """Every finding of translation and lint, errors first."""
    from samtranslator.model.exceptions import InvalidDocumentException

    try:
        translated = translate(template, region)
    except InvalidDocumentException as refused:
        return [
            Finding("SAM", "error", "Resources", cause.message)
            for cause in refused.causes
        ]

    return lint(translated, region, informational)


def lint(
    translated: dict[str, Any], region: str = REGION, informational: bool = False
) -> list[Finding]:
    """cfn-lint's findings on a plain CloudFormation template."""
    from cfnlint.api import ManualArgs
    from cfnlint.api import lint as cfn_lint

    config = ManualArgs(
        regions=[region],
        append_rules=["migrate.deploy.rules"],
        include_checks=["I"] if informational else [],
    )
    matches = cfn_lint(json.dumps(translated), config=config)
    findings = [
        Finding(
            match.rule.id,
            match.rule.severity,
            "/".join(str(step) for step in match.path or ()),
            match.message,
        )
        for match in matches
        if informational or match.rule.severity in _SEVERITIES
    ]
    return sorted(findings, key=lambda f: (f.severity != "error", f.rule, f.path))


def _packaged(template: dict[str, Any]) -> dict[str, Any]:
    packaged = copy.deepcopy(template)
    for resource in packaged.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue

        properties = resource.setdefault("Properties", {})
        code = properties.get("CodeUri")
        if isinstance(code, str) and not code.startswith("s3://"):
            properties["CodeUri"] = f"s3://{ARTIFACT_BUCKET}/{code}"
    return packaged
