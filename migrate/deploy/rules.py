"""The kit's own cfn-lint rules, run on the translated template.

    E9101  a queue feeding a function has a visibility timeout under six
           times the function's timeout
    E9102  an SQS subscription whose queue no queue policy opens to its topic
    E9103  an IAM action with a wildcard (`*`, `sqs:*`, `s3:Put*`)
    E9104  a secret written into the template (a URL with a password in it,
           an AWS access key id)

cfn-lint loads this module by name (`append_rules`); each rule reads the
whole template. References are compared as written: a queue is known by
the logical id in `Fn::GetAtt [Id, Arn]` or `Ref: Id`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from cfnlint.rules import CloudFormationLintRule, RuleMatch

SIX_TIMES = 6
LAMBDA_DEFAULT_TIMEOUT = 3
SQS_DEFAULT_VISIBILITY = 30
_SECRET = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@|AKIA[0-9A-Z]{16}", re.I)
_LAMBDA_SQS_GUIDE = "https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html"


def _logical_id(reference: Any) -> str | None:
    """The logical id behind `Ref: X` or `Fn::GetAtt: [X, Arn]`."""
    if not isinstance(reference, dict) or len(reference) != 1:
        return None

    if "Ref" in reference:
        found = reference["Ref"]
        return found if isinstance(found, str) else None

    attribute = reference.get("Fn::GetAtt")
    if isinstance(attribute, list) and attribute:
        return str(attribute[0])

    if isinstance(attribute, str):
        return attribute.split(".")[0]

    return None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class VisibilitySixTimesTimeout(CloudFormationLintRule):
    id = "E9101"
    shortdesc = "Queue visibility timeout at least six times the function timeout"
    description = (
        "A queue that feeds a Lambda function keeps a message hidden for at "
        "least six times the function's timeout, so batching and retries do "
        "not deliver a message that is still being handled"
    )
    source_url = _LAMBDA_SQS_GUIDE
    tags = ["resources", "sqs", "lambda"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        resources = cfn.template.get("Resources", {})
        matches = []
        mappings = cfn.get_resources(["AWS::Lambda::EventSourceMapping"])
        for name, mapping in mappings.items():
            properties = mapping.get("Properties", {})
            queue_id = _logical_id(properties.get("EventSourceArn"))
            function_id = _logical_id(properties.get("FunctionName"))
            queue = resources.get(queue_id, {})
            function = resources.get(function_id, {})
            if queue.get("Type") != "AWS::SQS::Queue":
                continue

            visibility = queue.get("Properties", {}).get(
                "VisibilityTimeout", SQS_DEFAULT_VISIBILITY
            )
            timeout = function.get("Properties", {}).get(
                "Timeout", LAMBDA_DEFAULT_TIMEOUT
            )
            if not isinstance(visibility, int) or not isinstance(timeout, int):
                continue

            if visibility < SIX_TIMES * timeout:
                matches.append(
                    RuleMatch(
                        ["Resources", queue_id, "Properties", "VisibilityTimeout"],
                        f"queue {queue_id} feeds {function_id} through {name} with a "
                        f"visibility timeout of {visibility} s; it must be at least "
                        f"{SIX_TIMES} x the function's timeout of {timeout} s "
                        f"({SIX_TIMES * timeout} s)",
                    )
                )
        return matches


class SubscriptionHasQueuePolicy(CloudFormationLintRule):
    id = "E9102"
    shortdesc = "Every SQS subscription has a queue policy allowing its topic"
    description = (
        "SNS delivers to a queue only if the queue's policy allows "
        "sqs:SendMessage from sns.amazonaws.com for that topic; without it "
        "every message published is silently dropped"
    )
    source_url = "https://docs.aws.amazon.com/sns/latest/dg/subscribe-sqs-queue-to-sns-topic.html"
    tags = ["resources", "sns", "sqs"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        policies = cfn.get_resources(["AWS::SQS::QueuePolicy"])
        matches = []
        subscriptions = cfn.get_resources(["AWS::SNS::Subscription"])
        for name, subscription in subscriptions.items():
            properties = subscription.get("Properties", {})
            if properties.get("Protocol") != "sqs":
                continue

            queue_id = _logical_id(properties.get("Endpoint"))
            topic = properties.get("TopicArn")
            if not any(
                _opens(policy.get("Properties", {}), queue_id, topic)
                for policy in policies.values()
            ):
                matches.append(
                    RuleMatch(
                        ["Resources", name],
                        f"subscription {name} delivers {topic} to queue {queue_id}, "
                        "but no AWS::SQS::QueuePolicy of that queue allows "
                        "sns.amazonaws.com to sqs:SendMessage from that topic",
                    )
                )
        return matches


def _opens(properties: dict[str, Any], queue_id: str | None, topic: Any) -> bool:
    queues = [_logical_id(q) for q in _as_list(properties.get("Queues", []))]
    if queue_id is None or queue_id not in queues:
        return False

    statements = _as_list(properties.get("PolicyDocument", {}).get("Statement", []))
    for statement in statements:
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue

        principal = statement.get("Principal", {})
        services = _as_list(principal.get("Service", [])) if principal else []
        actions = [str(a).lower() for a in _as_list(statement.get("Action", []))]
        if "sns.amazonaws.com" not in services or "sqs:sendmessage" not in actions:
            continue

        condition = statement.get("Condition")
        if condition is None:
            return True

        for test in ("ArnEquals", "ArnLike"):
            sources = condition.get(test, {}).get("aws:SourceArn")
            if sources is not None and topic in _as_list(sources):
                return True
    return False


class NoWildcardActions(CloudFormationLintRule):
    id = "E9103"
    shortdesc = "IAM actions are named, never wildcards"
    description = (
        "Least privilege: every Allow statement names the actions it allows; "
        "'*', 'sqs:*' or 's3:Put*' grant calls nobody reviewed"
    )
    source_url = "https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html"
    tags = ["resources", "iam"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        matches = []
        for path, statement in _statements(cfn.template.get("Resources", {})):
            if statement.get("Effect") != "Allow":
                continue

            for action in _as_list(statement.get("Action", [])):
                if isinstance(action, str) and "*" in action:
                    matches.append(
                        RuleMatch(
                            [*path, "Action"],
                            f"action {action!r} is a wildcard; name each action "
                            "the resource needs",
                        )
                    )
        return matches


def _statements(node: Any, path: tuple[Any, ...] = ("Resources",)) -> Iterator[Any]:
    """Every (path, statement) of every policy document under `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Statement":
                for index, statement in enumerate(_as_list(value)):
                    if isinstance(statement, dict):
                        yield [*path, key, index], statement
            else:
                yield from _statements(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _statements(value, (*path, index))


class NoSecrets(CloudFormationLintRule):
    id = "E9104"
    shortdesc = "No secret is written into the template"
    description = (
        "Database URLs and keys come in as references (a Secrets Manager ARN "
        "parameter), never as values in the template"
    )
    source_url = "https://docs.aws.amazon.com/secretsmanager/latest/userguide/cfn-example_reference-secret.html"
    tags = ["secrets"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        return [
            RuleMatch(list(path), "this value holds a secret; pass a reference")
            for path, value in _strings(cfn.template)
            if _SECRET.search(value)
        ]


def _strings(node: Any, path: tuple[Any, ...] = ()) -> Iterator[Any]:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, (*path, index))
