"""A context's SAM template, derived from the declarations `migrate up` uses.

The topology comes from `migrate.system.topology` for the context as an
extracted one, the functions from the manifest's side effects; nothing here
lists a queue or a topic of its own. A context's stack holds:

- its SNS topic; topics of other contexts it consumes are parameters
  (`<Context>TopicArn`), because their own stacks hold them;
- every queue the context consumes (its service's, the monolith follower's,
  one per side effect), each with a dead-letter queue kept 14 days and a
  redrive policy after the declared number of receives;
- one queue policy per subscribed queue that lets exactly its topics send,
  and the subscriptions (raw delivery, the declared filter policy on message
  attributes), each created after its queue's policy;
- per side effect a function with an SQS event source mapping
  (ReportBatchItemFailures, batch size, batching window, maximum
  concurrency), its log group (30 days), and a role of its own allowed only
  what that function does: read and delete on its queue, write to its log
  group, the idempotency table's item calls, `s3:PutObject` under its own
  prefix of the output bucket, and X-Ray's two calls (which have no
  resource-level permissions);
- a queue feeding a function has a visibility timeout of at least six times
  the function's timeout, as AWS advises;
- the idempotency table (DynamoDB, TTL on `expiration`), the output bucket
  (private, encrypted, kept when the stack goes);
- `ServiceHostPolicy`: what the context's service host needs (publish to the
  topic, consume its queues, read its database URL), to attach to whatever
  role runs it; the database URL is a Secrets Manager secret whose ARN is a
  parameter, so no secret is ever in the template.

`CodeUri` is each function's zip as `migrate deploy build` names it,
relative to the template: build into the folder the template is written to,
then `sam deploy --guided` there.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from migrate import names
from migrate.deploy.functions import Function, Settings, functions_of
from migrate.manifest import Manifest
from migrate.messaging.topology import DEAD_LETTER_RETENTION_SECONDS, Queue, Topology

RUNTIME = "python3.11"
ARCHITECTURE = "x86_64"
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
LOG_RETENTION_DAYS = 30
VISIBILITY_PER_TIMEOUT = 6
SECRET_PARAMETER = "DatabaseUrlSecretArn"
_QUEUE_CALLS = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
]
_IDEMPOTENCY_CALLS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
]


@dataclasses.dataclass(frozen=True)
class Stack:
    """What a context's stack holds, before it is written as a template."""

    context: str
    topology: Topology
    functions: tuple[Function, ...]
    settings: Settings


def stack_of(manifest: Manifest, context: str, settings: Settings) -> Stack:
    # Imported here: the system module starts processes and reads settings,
    # none of which a template needs until it is asked for.
    from migrate.system import topology

    whole = topology(manifest, [context])
    app = manifest.name
    functions = tuple(functions_of(manifest, context))
    owned = {names.follow_queue(app, context, side) for side in ("service", "monolith")}
    owned |= {
        names.consumer_queue(app, context, source) for source in manifest.contexts
    }
    owned |= {f.queue for f in functions}
    queues = [q for q in whole.queues if q.name in owned]
    subscriptions = [s for s in whole.subscriptions if s.queue in owned]
    topics = [t for t in whole.topics if t.name == names.topic(app, context)]
    topics += [
        t
        for t in whole.topics
        if t not in topics and any(s.topic == t.name for s in subscriptions)
    ]
    return Stack(context, Topology(topics, queues, subscriptions), functions, settings)


def template(manifest: Manifest, context: str, settings: Settings) -> dict[str, Any]:
    """The SAM template of a context's stack, as a dictionary."""
    return _Writer(manifest.name, stack_of(manifest, context, settings)).template()


class _PlainDumper(yaml.SafeDumper):
    """YAML without anchors and aliases (`&id001`, `*id001`): the template
    repeats a value it shares (the same policy document, the same tags)
    rather than pointing at it, since CloudFormation refuses aliases in a
    template uploaded directly."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(document: Any) -> str:
    """A document as YAML that CloudFormation reads: keys in their order, no
    aliases."""
    text: str = yaml.dump(document, Dumper=_PlainDumper, sort_keys=False, width=88)
    return text


def dump(document: dict[str, Any], context: str) -> str:
    header = (
        f"# The {context} stack, written by `migrate deploy template {context}`.\n"
        "# Regenerate it rather than edit it; deploy with `sam deploy --guided`\n"
        "# from the folder `migrate deploy build` wrote the zips to.\n"
    )
    return header + to_yaml(document)


class _Writer:
    def __init__(self, app: str, stack: Stack):
        self.app = app
        self.stack = stack
        self.prefix = f"{app}-{stack.context}-"
        self.parameters: dict[str, Any] = {}
        self.resources: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}

    def template(self) -> dict[str, Any]:
        stack = self.stack
        for topic in stack.topology.topics:
            self._topic(topic.name, topic.fifo)
        for queue in stack.topology.queues:
            self._queue(queue)
        for subscription in stack.topology.subscriptions:
            self._subscription(subscription.topic, subscription.queue, subscription)
        if stack.functions:
            self._shared_function_resources()
        for function in stack.functions:
            self._function(function)
        self._service_host()
        return {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Transform": "AWS::Serverless-2016-10-31",
            "Description": f"{self.app}: the {stack.context} context's messaging, "
            "side-effect functions and service permissions",
            "Parameters": self.parameters,
            "Resources": self.resources,
            "Outputs": self.outputs,
        }

    # Names ---------------------------------------------------------------

    def _own_topic(self) -> str:
        return names.topic(self.app, self.stack.context)

    def _topic_id(self, topic: str) -> str:
        context = topic.removeprefix(f"{self.app}-")
        return _camel(context) + "Topic"

    def _topic_arn(self, topic: str) -> dict[str, str]:
        if topic == self._own_topic():
            return {"Ref": self._topic_id(topic)}

        return {"Ref": self._topic_id(topic) + "Arn"}

    def _queue_id(self, queue: str) -> str:
        return _camel(queue.removeprefix(self.prefix)) + "Queue"

    def _function_of(self, queue: str) -> Function | None:
        return next((f for f in self.stack.functions if f.queue == queue), None)

    # Resources -----------------------------------------------------------

    def _topic(self, name: str, fifo: bool) -> None:
        if name != self._own_topic():
            self.parameters[self._topic_id(name) + "Arn"] = {
                "Type": "String",
                "AllowedPattern": r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w.-]+$",
                "Description": f"ARN of the topic {name}, from the stack that owns it",
            }
            return

        properties: dict[str, Any] = {"TopicName": name + (".fifo" if fifo else "")}
        if fifo:
            properties["FifoTopic"] = True
        logical = self._topic_id(name)
        self.resources[logical] = {"Type": "AWS::SNS::Topic", "Properties": properties}
        self.outputs[logical + "Arn"] = {
            "Description": f"the {self.stack.context} context's events",
            "Value": {"Ref": logical},
        }

    def _queue(self, queue: Queue) -> None:
        logical = self._queue_id(queue.name)
        dead_letters = logical.removesuffix("Queue") + "DeadLetterQueue"
        visibility = queue.visibility_timeout
        if self._function_of(queue.name) is not None:
            visibility = max(
                visibility, VISIBILITY_PER_TIMEOUT * self.stack.settings.timeout
            )
        fifo = {"FifoQueue": True} if queue.fifo else {}
        self.resources[dead_letters] = _kept(
            {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "QueueName": queue.dead_letter_aws_name,
                    "MessageRetentionPeriod": DEAD_LETTER_RETENTION_SECONDS,
                    "SqsManagedSseEnabled": True,
                    **fifo,
                },
            }
        )
        self.resources[logical] = _kept(
            {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "QueueName": queue.aws_name,
                    "VisibilityTimeout": visibility,
                    "MessageRetentionPeriod": QUEUE_RETENTION_SECONDS,
                    "SqsManagedSseEnabled": True,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": [dead_letters, "Arn"]},
                        "maxReceiveCount": queue.dead_letter_after,
                    },
                    **fifo,
                },
            }
        )
        senders = sorted(
            {
                s.topic
                for s in self.stack.topology.subscriptions
                if s.queue == queue.name
            }
        )
        if senders:
            self.resources[logical + "Policy"] = _queue_policy(
                logical, [self._topic_arn(t) for t in senders]
            )
        self.outputs[logical + "Url"] = {
            "Description": f"the queue {queue.name}",
            "Value": {"Ref": logical},
        }

    def _subscription(self, topic: str, queue: str, declared: Any) -> None:
        queue_id = self._queue_id(queue)
        source = _camel(topic.removeprefix(f"{self.app}-"))
        properties: dict[str, Any] = {
            "Protocol": "sqs",
            "TopicArn": self._topic_arn(topic),
            "Endpoint": {"Fn::GetAtt": [queue_id, "Arn"]},
            "RawMessageDelivery": declared.raw,
        }
        if declared.filter_policy is not None:
            properties["FilterPolicyScope"] = "MessageAttributes"
            properties["FilterPolicy"] = dict(declared.filter_policy)
        self.resources[f"{queue_id}From{source}"] = {
            "Type": "AWS::SNS::Subscription",
            # Until its policy exists SNS cannot deliver to the queue, and
            # what it publishes meanwhile is lost.
            "DependsOn": [queue_id + "Policy"],
            "Properties": properties,
        }

    def _shared_function_resources(self) -> None:
        self.resources["IdempotencyTable"] = {
            "Type": "AWS::DynamoDB::Table",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "TimeToLiveSpecification": {
                    "AttributeName": "expiration",
                    "Enabled": True,
                },
                "SSESpecification": {"SSEEnabled": True},
            },
        }
        self.resources["OutputBucket"] = {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                    ]
                },
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {
                    "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
                },
            },
        }
        self.outputs["OutputBucketName"] = {
            "Description": "where the side effects' e-mails and documents land",
            "Value": {"Ref": "OutputBucket"},
        }

    def _function(self, function: Function) -> None:
        settings = self.stack.settings
        logical = function.logical_id
        queue_id = self._queue_id(function.queue)
        self.resources[logical + "LogGroup"] = {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "LogGroupName": f"/aws/lambda/{function.name}",
                "RetentionInDays": LOG_RETENTION_DAYS,
            },
        }
        statements = [
            _allow(
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                {"Fn::GetAtt": [logical + "LogGroup", "Arn"]},
            ),
            _allow(_QUEUE_CALLS, {"Fn::GetAtt": [queue_id, "Arn"]}),
            _allow(_IDEMPOTENCY_CALLS, {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}),
            _allow(
                ["s3:PutObject"],
                {"Fn::Sub": "${OutputBucket.Arn}/" + function.effect + "/*"},
            ),
            # X-Ray's calls take no resource: "*" is the only resource there is.
            _allow(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*"),
        ]
        self.resources[logical + "Role"] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
                "Policies": [
                    {
                        "PolicyName": f"{function.name}-least-privilege",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": statements,
                        },
                    }
                ],
            },
        }
        self.resources[logical + "Function"] = {
            "Type": "AWS::Serverless::Function",
            "DependsOn": [logical + "LogGroup"],
            "Properties": {
                "FunctionName": function.name,
                "Description": f"{function.effect} on {function.on}",
                "Handler": function.handler,
                "Runtime": RUNTIME,
                "Architectures": [ARCHITECTURE],
                "CodeUri": function.archive,
                "MemorySize": settings.memory,
                "Timeout": settings.timeout,
                "Role": {"Fn::GetAtt": [logical + "Role", "Arn"]},
                "Tracing": "Active",
                "Environment": {
                    "Variables": {
                        "POWERTOOLS_SERVICE_NAME": function.context,
                        "IDEMPOTENCY_TABLE": {"Ref": "IdempotencyTable"},
                        "OUTPUT_BUCKET": {"Ref": "OutputBucket"},
                    }
                },
                "Events": {
                    "Queue": {
                        "Type": "SQS",
                        "Properties": {
                            "Queue": {"Fn::GetAtt": [queue_id, "Arn"]},
                            "BatchSize": settings.batch_size,
                            "MaximumBatchingWindowInSeconds": (
                                settings.batching_window
                            ),
                            "FunctionResponseTypes": ["ReportBatchItemFailures"],
                            "ScalingConfig": {
                                "MaximumConcurrency": settings.concurrency
                            },
                        },
                    }
                },
            },
        }

    def _service_host(self) -> None:
        context = self.stack.context
        self.parameters[SECRET_PARAMETER] = {
            "Type": "String",
            "AllowedPattern": r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:"
            r"secret:[\w/+=.@-]+$",
            "Description": f"ARN of the Secrets Manager secret holding "
            f"{context.upper()}_DATABASE_URL (the template names it, never holds it)",
        }
        consumed = [
            q.name
            for q in self.stack.topology.queues
            if q.name != names.follow_queue(self.app, context, "monolith")
            and self._function_of(q.name) is None
        ]
        statements = [
            _allow(["sns:Publish"], {"Ref": self._topic_id(self._own_topic())}),
            _allow(
                _QUEUE_CALLS,
                [{"Fn::GetAtt": [self._queue_id(q), "Arn"]} for q in consumed],
            ),
            _allow(["secretsmanager:GetSecretValue"], {"Ref": SECRET_PARAMETER}),
        ]
        self.resources["ServiceHostPolicy"] = {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Description": f"what the {context} service host may do",
                "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
            },
        }
        self.outputs["ServiceHostPolicyArn"] = {
            "Description": f"attach to the role that runs the {context} service",
            "Value": {"Ref": "ServiceHostPolicy"},
        }


def _allow(actions: list[str], resource: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource}


def _queue_policy(queue_id: str, topic_arns: list[Any]) -> dict[str, Any]:
    return {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {
            "Queues": [{"Ref": queue_id}],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "SubscribedTopicsSend",
                        "Effect": "Allow",
                        "Principal": {"Service": "sns.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
                        "Condition": {"ArnEquals": {"aws:SourceArn": topic_arns}},
                    }
                ],
            },
        },
    }


def _kept(resource: dict[str, Any]) -> dict[str, Any]:
    """A queue goes with its stack, said outright: its messages are work in
    flight, not records (the output bucket keeps those)."""
    return {"DeletionPolicy": "Delete", "UpdateReplacePolicy": "Delete", **resource}


def _camel(text: str) -> str:
    return "".join(part.capitalize() for part in text.replace("_", "-").split("-"))
