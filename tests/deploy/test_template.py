"""The SAM template: derived from the topology, translated and linted clean,
and every planted mistake reported."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from migrate.deploy.checks import Finding, check, translate
from migrate.deploy.functions import Settings
from migrate.deploy.template import dump, template
from migrate.manifest import load
from migrate.system import topology


@pytest.fixture(scope="module")
def billing() -> dict[str, Any]:
    return template(load(), "billing", Settings())


def _of_type(document: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in document["Resources"].items() if v["Type"] == kind}


def _rules(findings: list[Finding]) -> set[str]:
    return {finding.rule for finding in findings}


def test_billing_template_translates_and_lints_clean(billing: dict) -> None:
    assert check(billing, informational=True) == []


def test_shipping_template_translates_and_lints_clean() -> None:
    assert check(template(load(), "shipping", Settings())) == []


def test_queues_and_filter_policies_come_from_the_system_topology(
    billing: dict,
) -> None:
    declared = topology(load(), ["billing"])
    ours = [q for q in declared.queues if q.name.startswith("northwind-billing-")]
    wanted = {
        (s.queue, str(dict(s.filter_policy or {})))
        for s in declared.subscriptions
        if s.queue.startswith("northwind-billing-")
    }

    queues = _of_type(billing, "AWS::SQS::Queue")
    found = {
        (
            queues[p["Properties"]["Endpoint"]["Fn::GetAtt"][0]]["Properties"][
                "QueueName"
            ],
            str(p["Properties"]["FilterPolicy"]),
        )
        for p in _of_type(billing, "AWS::SNS::Subscription").values()
    }

    names = {q["Properties"]["QueueName"] for q in queues.values()}
    assert names == {q.name for q in ours} | {q.dead_letter_name for q in ours}
    assert found == wanted


def test_every_subscription_has_a_queue_policy_allowing_its_topic(
    billing: dict,
) -> None:
    policies = _of_type(billing, "AWS::SQS::QueuePolicy").values()

    for name, subscription in _of_type(billing, "AWS::SNS::Subscription").items():
        queue = subscription["Properties"]["Endpoint"]["Fn::GetAtt"][0]
        topic = subscription["Properties"]["TopicArn"]
        allowing = [
            statement
            for policy in policies
            if {"Ref": queue} in policy["Properties"]["Queues"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if statement["Principal"] == {"Service": "sns.amazonaws.com"}
            and statement["Action"] == "sqs:SendMessage"
            and topic in statement["Condition"]["ArnEquals"]["aws:SourceArn"]
        ]
        assert allowing, f"{name}: no queue policy lets {topic} send to {queue}"


def test_every_queue_sends_what_keeps_failing_to_its_dead_letter_queue(
    billing: dict,
) -> None:
    queues = _of_type(billing, "AWS::SQS::Queue")
    declared = {q.aws_name: q for q in topology(load(), ["billing"]).queues}
    fed = {name: q for name, q in queues.items() if "RedrivePolicy" in q["Properties"]}

    for name, queue in fed.items():
        redrive = queue["Properties"]["RedrivePolicy"]
        dead_letters = queues[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]]
        wanted = declared[queue["Properties"]["QueueName"]]
        assert redrive["deadLetterTargetArn"]["Fn::GetAtt"][1] == "Arn"
        assert redrive["maxReceiveCount"] == wanted.dead_letter_after
        assert dead_letters["Properties"]["QueueName"] == wanted.dead_letter_aws_name
        assert "RedrivePolicy" not in dead_letters["Properties"], name
    assert len(fed) * 2 == len(queues)


def test_each_function_queue_hides_a_message_six_times_the_timeout(
    billing: dict,
) -> None:
    functions = _of_type(billing, "AWS::Serverless::Function")

    for function in functions.values():
        properties = function["Properties"]
        event = properties["Events"]["Queue"]["Properties"]
        queue = billing["Resources"][event["Queue"]["Fn::GetAtt"][0]]
        assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert queue["Properties"]["VisibilityTimeout"] >= 6 * properties["Timeout"]


def test_each_function_role_reaches_only_its_own_queue(billing: dict) -> None:
    translated = translate(billing)
    mappings = _of_type(translated, "AWS::Lambda::EventSourceMapping")
    roles = _of_type(translated, "AWS::IAM::Role")

    for mapping in mappings.values():
        function = translated["Resources"][mapping["Properties"]["FunctionName"]["Ref"]]
        role = roles[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        queue_statements = [
            s for s in statements if "sqs:ReceiveMessage" in s["Action"]
        ]
        assert [s["Resource"] for s in queue_statements] == [
            mapping["Properties"]["EventSourceArn"]
        ]
        assert not any(
            policy.startswith("arn:")
            for policy in role["Properties"].get("ManagedPolicyArns", [])
        )


def test_the_database_url_is_a_secret_reference_not_a_value(billing: dict) -> None:
    text = dump(billing, "billing")

    assert "DatabaseUrlSecretArn" in billing["Parameters"]
    assert "postgresql://" not in text and "sqlite:///" not in text
    assert yaml.safe_load(text) == billing


def _misspelt_report_type(document: dict) -> None:
    events = document["Resources"]["InvoiceEmailFunction"]["Properties"]["Events"]
    events["Queue"]["Properties"]["FunctionResponseTypes"] = ["ReportBatchItemFailure"]


def _visibility_below_the_timeout(document: dict) -> None:
    document["Resources"]["InvoiceEmailQueue"]["Properties"]["VisibilityTimeout"] = 10


def _visibility_twice_the_timeout(document: dict) -> None:
    document["Resources"]["InvoiceEmailQueue"]["Properties"]["VisibilityTimeout"] = 60


def _subscription_without_queue_policy(document: dict) -> None:
    del document["Resources"]["InvoicePdfQueuePolicy"]
    for resource in document["Resources"].values():
        if resource.get("DependsOn") == ["InvoicePdfQueuePolicy"]:
            del resource["DependsOn"]


def _queue_policy_for_another_topic(document: dict) -> None:
    statement = document["Resources"]["InvoicePdfQueuePolicy"]["Properties"][
        "PolicyDocument"
    ]["Statement"][0]
    statement["Condition"]["ArnEquals"]["aws:SourceArn"] = [{"Ref": "OrderingTopicArn"}]


def _wildcard_action(document: dict) -> None:
    role = document["Resources"]["InvoiceEmailRole"]["Properties"]
    role["Policies"][0]["PolicyDocument"]["Statement"][1]["Action"] = "sqs:*"


def _database_url_written_in(document: dict) -> None:
    variables = document["Resources"]["InvoiceEmailFunction"]["Properties"][
        "Environment"
    ]["Variables"]
    variables["DATABASE_URL"] = "postgresql://billing:s3cret@db.internal/billing"


@pytest.mark.parametrize(
    ("plant", "rule"),
    [
        (_misspelt_report_type, "E3030"),
        (_visibility_below_the_timeout, "E3505"),
        (_visibility_twice_the_timeout, "E9101"),
        (_subscription_without_queue_policy, "E9102"),
        (_queue_policy_for_another_topic, "E9102"),
        (_wildcard_action, "E9103"),
        (_database_url_written_in, "E9104"),
    ],
    ids=lambda value: getattr(value, "__name__", value).strip("_"),
)
def test_planted_mistake_is_reported(billing: dict, plant: Any, rule: str) -> None:
    planted = copy.deepcopy(billing)
    plant(planted)

    findings = check(planted)

    assert rule in _rules(findings), findings
    assert all(finding.severity == "error" for finding in findings)


def test_a_template_the_translator_refuses_is_reported(billing: dict) -> None:
    planted = copy.deepcopy(billing)
    events = planted["Resources"]["InvoicePdfFunction"]["Properties"]["Events"]
    events["Queue"]["Type"] = "SQSQueue"

    findings = check(planted)

    assert _rules(findings) == {"SAM"}
