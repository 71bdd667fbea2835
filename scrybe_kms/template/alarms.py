"""Alarms on dangerous key events, and the topic that carries them to people.

Two channels report each event, and neither depends on the PHI key (decision D5):

1. CloudTrail -> log group -> metric filter -> alarm -> topic. The log group and topic are
   encrypted with the *audit* key. One filter uses CIS 4.7's exact pattern (Security Hub
   CloudWatch.7 compares it literally); the others match this key's ARN only.
2. An EventBridge rule on the same CloudTrail events -> topic. It does not wait for log
   delivery at all, so it still fires if CloudTrail cannot write logs once the PHI key is
   disabled (CloudTrail stops delivering logs encrypted with a disabled key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from awacs.aws import ArnLike, StringEquals
from troposphere import GetAtt, Ref, Sub, Template, cloudwatch, events, logs, sns

from scrybe_kms.config import naming
from scrybe_kms.template import policies
from scrybe_kms.template.context import context
from scrybe_kms.template.key import KeyHandle
from scrybe_kms.template.tags import standard_tags

__all__ = [
    "CIS_4_7_PATTERN",
    "KEY_ALARMS",
    "AlarmSpec",
    "alarm_topic",
    "alarm_topic_policy",
    "emergency_role_alarm",
    "filter_pattern",
    "key_alarm_specs",
    "key_event_alarms",
    "key_event_rule",
]

#: CIS AWS Foundations 4.7, character for character.
CIS_4_7_PATTERN = ("{($.eventSource=kms.amazonaws.com) && (($.eventName=DisableKey) || "
                   "($.eventName=ScheduleKeyDeletion))}")


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: the metric filter that counts an event and why someone must be woken for it."""

    title: str
    #: A literal pattern, or a ``Fn::Sub`` template where ``${KeyArn}`` is this key's ARN.
    pattern: str
    description: str
    #: API calls the EventBridge channel also reports for this alarm (empty: filter only).
    event_names: tuple[str, ...] = ()
    threshold: int = 1
    period: int = 60


def _key_event(event_name: str, extra: str = "") -> str:
    return ('{ ($.eventSource = "kms.amazonaws.com") && ($.eventName = "' + event_name
            + '") && ($.resources[0].ARN = "${KeyArn}")' + extra + ' }')


#: A grant an AWS service creates for a resource it manages (RDS, EBS, DynamoDB ... attaching the
#: key) is recorded under the caller with ``userIdentity.invokedBy`` set to the service; a grant
#: someone created directly has no ``invokedBy`` (decision D20).
DIRECT_GRANT = " && ($.userIdentity.invokedBy NOT EXISTS)"


#: Access-denied calls on the key within one period that count as probing.
ACCESS_DENIED_BURST = 5

KEY_ALARMS: tuple[AlarmSpec, ...] = (
    AlarmSpec("KmsKeyDisabledOrDeletionScheduledCis47", CIS_4_7_PATTERN,
              "CIS 4.7: a customer-managed KMS key in this account was disabled or scheduled "
              "for deletion."),
    AlarmSpec("PhiKeyDisabled", _key_event("DisableKey"),
              "The PHI master key was disabled: the application can no longer encrypt or decrypt "
              "PHI. Re-enable it (kms:EnableKey) if this was not planned.",
              ("DisableKey",)),
    AlarmSpec("PhiKeyDeletionScheduled", _key_event("ScheduleKeyDeletion"),
              "Deletion of the PHI master key was scheduled: every record encrypted under it "
              "becomes unreadable when the waiting period ends. Cancel with kms:CancelKeyDeletion.",
              ("ScheduleKeyDeletion",)),
    AlarmSpec("PhiKeyPolicyChanged", _key_event("PutKeyPolicy"),
              "The PHI key policy was replaced. Admins keep PutKeyPolicy (KMS requires it), so this "
              "is how an admin could grant itself Decrypt: review the new policy now.",
              ("PutKeyPolicy",)),
    AlarmSpec("PhiKeyGrantCreated", _key_event("CreateGrant", DIRECT_GRANT),
              "A grant was created directly on the PHI key (not by an AWS service for a resource it "
              "manages); grants give key use outside the key policy. Only the emergency role can do "
              "this: find out why.",
              ("CreateGrant",)),
    AlarmSpec("PhiKeyRotationDisabled", _key_event("DisableKeyRotation"),
              "Automatic rotation of the PHI key was turned off (Security Hub KMS.4). Re-enable it.",
              ("DisableKeyRotation",)),
    AlarmSpec("PhiKeyAccessDeniedBurst",
              '{ ($.eventSource = "kms.amazonaws.com") && (($.errorCode = "AccessDenied") || '
              '($.errorCode = "AccessDeniedException")) && ($.resources[0].ARN = "${KeyArn}") }',
              f"{ACCESS_DENIED_BURST} or more denied KMS calls on the PHI key within 5 minutes: "
              "someone is probing for access, or a deployment lost its permissions.",
              threshold=ACCESS_DENIED_BURST, period=300),
)


def emergency_role_alarm(role_arn: str) -> AlarmSpec:
    """Any use of the break-glass role: assuming it, or any call made with its sessions."""
    return AlarmSpec(
        "EmergencyRoleUsed",
        '{ ($.userIdentity.sessionContext.sessionIssuer.arn = "' + role_arn + '") || '
        '(($.eventName = "AssumeRole") && ($.requestParameters.roleArn = "' + role_arn + '")) }',
        "The break-glass role was assumed or used. Every use must match an open incident; "
        "otherwise treat it as a compromise.",
    )


def key_alarm_specs(emergency_role_arn: str | None) -> tuple[AlarmSpec, ...]:
    """The alarms for one configuration: the fixed set, plus the emergency role if there is one."""
    if emergency_role_arn is None:
        return KEY_ALARMS
    return (*KEY_ALARMS, emergency_role_alarm(emergency_role_arn))


def filter_pattern(spec: AlarmSpec, key: KeyHandle) -> Any:
    """The rendered ``FilterPattern``: literal, or a ``Fn::Sub`` binding ``${KeyArn}``."""
    if "${KeyArn}" in spec.pattern:
        return Sub(spec.pattern, KeyArn=key.arn)
    return spec.pattern


def alarm_topic(template: Template, *, environment: str, key: KeyHandle,
                emails: Sequence[str], title: str = "AlarmTopic") -> sns.Topic:
    """An SNS topic encrypted with ``key`` (the audit key, never the PHI key, and never the
    AWS-managed ``alias/aws/sns`` key, which CloudWatch cannot publish to)."""
    key.add_statement(policies.allow_service(
        # CloudWatch and EventBridge publish to the encrypted topic through SNS, which needs a
        # data key. AWS documents no condition keys for this use; the audit key protects only
        # alarm messages and the trail's log copy, never PHI.
        "AlarmPublishersUseTopicKey", ["cloudwatch.amazonaws.com", "events.amazonaws.com"],
        policies.TOPIC_PUBLISHER_KEY_ACTIONS, ["*"],
    ))
    return template.add_resource(sns.Topic(
        title,
        TopicName=naming.alarm_topic_name(environment),
        DisplayName=f"Scrybe PHI key alarms ({environment})",
        KmsMasterKeyId=key.arn,
        Subscription=[sns.Subscription(Protocol="email", Endpoint=e) for e in emails],
        Tags=standard_tags(environment),
        Metadata=context("Carries key alarms to people; encrypted with the audit key, never the PHI key."),
    ))


def key_event_alarms(template: Template, *, environment: str, key: KeyHandle,
                     log_group: logs.LogGroup, actions: Sequence[Any],
                     specs: Sequence[AlarmSpec] = KEY_ALARMS) -> list[cloudwatch.Alarm]:
    """A metric filter and an alarm per spec; any single matching event raises the alarm."""
    namespace = naming.metric_namespace(environment)
    alarms = []
    for spec in specs:
        template.add_resource(logs.MetricFilter(
            f"{spec.title}Filter",
            LogGroupName=Ref(log_group),
            FilterName=naming.metric_filter_name(environment, spec.title),
            FilterPattern=filter_pattern(spec, key),
            MetricTransformations=[logs.MetricTransformation(
                MetricNamespace=namespace, MetricName=spec.title, MetricValue="1")],
            Metadata=context(f"Counts the events the {spec.title} alarm reports."),
        ))
        alarms.append(template.add_resource(cloudwatch.Alarm(
            f"{spec.title}Alarm",
            AlarmName=naming.alarm_name(environment, spec.title),
            AlarmDescription=spec.description,
            Namespace=namespace,
            MetricName=spec.title,
            Statistic="Sum",
            Period=spec.period,
            EvaluationPeriods=1,
            Threshold=spec.threshold,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching",
            ActionsEnabled=True,
            AlarmActions=list(actions),
            Metadata=context(spec.description),
        )))
    return alarms


def key_event_rule(template: Template, *, environment: str, key: KeyHandle, topic: sns.Topic,
                   specs: Sequence[AlarmSpec] = KEY_ALARMS, title: str = "PhiKeyEventRule") -> events.Rule:
    """EventBridge channel: the same key events straight from CloudTrail to the topic."""
    names = sorted({name for spec in specs for name in spec.event_names} - {"CreateGrant"})
    return template.add_resource(events.Rule(
        title,
        Name=naming.event_rule_name(environment, "key-events"),
        Description="Dangerous operations on the PHI master key, independent of log delivery",
        State="ENABLED",
        EventPattern={
            "source": ["aws.kms"],
            "detail-type": ["AWS API Call via CloudTrail"],
            "detail": {
                "eventSource": ["kms.amazonaws.com"],
                "resources": {"ARN": [key.arn]},
                # CreateGrant only when made directly, never one an AWS service made for a
                # resource it manages, as the PhiKeyGrantCreated filter (D20).
                "$or": [
                    {"eventName": names},
                    {"eventName": ["CreateGrant"], "userIdentity": {"invokedBy": [{"exists": False}]}},
                ],
            },
        },
        Targets=[events.Target(Id="AlarmTopic", Arn=Ref(topic))],
        Metadata=context("Second channel for key events that does not wait for CloudTrail log delivery."),
    ))


def alarm_topic_policy(template: Template, *, environment: str, topic: sns.Topic,
                       rule: events.Rule, title: str = "AlarmTopicPolicy") -> sns.TopicPolicy:
    """Only this stack's alarms and rule may publish (confused-deputy scoped by source)."""
    alarms = Sub("arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:"
                 + naming.alarm_name_prefix(environment) + "*")
    return template.add_resource(sns.TopicPolicy(
        title,
        Topics=[Ref(topic)],
        PolicyDocument=policies.policy_document([
            policies.allow_service("CloudWatchAlarmsPublish", "cloudwatch.amazonaws.com",
                                   [policies.SNS_PUBLISH], [Ref(topic)],
                                   ArnLike("aws:SourceArn", alarms),
                                   StringEquals("aws:SourceAccount", Ref("AWS::AccountId"))),
            policies.allow_service("KeyEventRulePublishes", "events.amazonaws.com",
                                   [policies.SNS_PUBLISH], [Ref(topic)],
                                   ArnLike("aws:SourceArn", GetAtt(rule, "Arn"))),
        ]),
    ))
