"""The monitoring stacks' parts: metric filters (filter stack); topics, alarms, health alarms, the
EventBridge rules and their dead-letter queue (alarm stack).

Two channels report each watched event (decision D5, D26): CloudTrail -> the key stack's log group
-> metric filter -> alarm -> topic, and CloudTrail -> EventBridge rule -> topic. Neither topic is
encrypted with a KMS key: alarm messages are not PHI, and a key on the delivery path could be
disabled by the very person an alarm reports (issue 11). Alarms about the delivery path itself go
to a second, "watchdog" topic, so no alarm is delivered through the thing it reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from awacs.aws import ArnEquals, ArnLike, StringEquals
from troposphere import AWSHelperFn, GetAtt, ImportValue, Ref, Sub, Template, cloudwatch, events, logs, sns, sqs

from scrybe_kms.config import naming
from scrybe_kms.template import condition_keys as keys
from scrybe_kms.template import policies
from scrybe_kms.template.context import context
from scrybe_kms.template.monitoring import LiteralFilter
from scrybe_kms.template.tags import standard_tags
from scrybe_kms.template.watched_events import WatchedEvent, event_pattern, filter_pattern

__all__ = [
    "ALARM_PERIOD",
    "EVALUATION_PERIODS",
    "alarm_topic",
    "audit_event_rules",
    "dead_letter_queue",
    "event_alarms",
    "forwarding_alarms",
    "health_alarms",
    "metric_filters",
    "topic_policy",
]

#: Late data (decision D27): CloudTrail reaches CloudWatch Logs in about 5 minutes, without a
#: guarantee. A 5-minute period evaluated over 3 periods with 1 datapoint to alarm raises the alarm
#: for a matching event counted anywhere in the last 15 minutes, so a datapoint landing in a period
#: already evaluated is still seen.
ALARM_PERIOD = 300
EVALUATION_PERIODS = 3
#: No trail events reach the log group for an hour: delivery stopped (trail, key or log group).
HEARTBEAT_PERIOD, HEARTBEAT_PERIODS = 900, 4


def bind(node: Any, variables: dict[str, Any]) -> Any:
    """Strings holding ``${...}`` become ``Fn::Sub`` with just the variables they use."""
    if isinstance(node, str) and "${" in node:
        used = {k: v for k, v in variables.items() if "${" + k + "}" in node}
        return Sub(node, **used) if used else Sub(node)
    if isinstance(node, dict):
        return {k: bind(v, variables) for k, v in node.items()}
    if isinstance(node, list):
        return [bind(v, variables) for v in node]
    return node


def key_variables(environment: str) -> dict[str, AWSHelperFn]:
    """The key ARNs (and the PHI key's ID) the patterns name, imported from the key stack's exports."""
    return {"PhiKeyArn": ImportValue(naming.export_name(environment, "KmsKeyArn")),
            "PhiKeyId": ImportValue(naming.export_name(environment, "KmsKeyId")),
            "AuditKeyArn": ImportValue(naming.export_name(environment, "AuditKeyArn"))}


def alarm_topic(template: Template, *, environment: str, kind: str, emails: Sequence[str], title: str,
                why: str) -> sns.Topic:
    """An unencrypted topic (decision D26): alarm names and descriptions are not PHI, and a KMS key
    here could be disabled by whoever an alarm reports, silencing every alarm at once."""
    return template.add_resource(sns.Topic(
        title,
        TopicName=naming.alarm_topic_name(environment, kind),
        DisplayName=f"Scrybe PHI key {kind} ({environment})",
        Subscription=[sns.Subscription(Protocol="email", Endpoint=e) for e in emails],
        Tags=standard_tags(environment),
        Metadata=context(why, must=["no KMS key: nothing an alarm reports can silence its own delivery"],
                         checkov={"skip": [{"id": "CKV_AWS_26", "comment": "Deliberately unencrypted: alarm "
                                            "metadata is not PHI, and a key on the delivery path could be disabled "
                                            "by the person an alarm reports (docs/decisions.md D26)."}]}),
    ))


def topic_policy(template: Template, *, environment: str, topic: sns.Topic, events_publish: bool,
                 title: str, s3_buckets: Sequence[str] = ()) -> sns.TopicPolicy:
    """This stack's alarms may publish (scoped by alarm name and account); EventBridge may publish
    without a condition, as its user guide documents for SNS targets (decision D23); S3 may publish
    the event notifications of ``s3_buckets`` (``Fn::Sub`` bucket names; failed replication, D48)."""
    alarms = Sub("arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:"
                 + naming.alarm_name_prefix(environment) + "*")
    statements = [policies.allow_service("CloudWatchAlarmsPublish", "cloudwatch.amazonaws.com",
                                         [policies.SNS_PUBLISH], [Ref(topic)], ArnLike(keys.SOURCE_ARN, alarms),
                                         StringEquals(keys.SOURCE_ACCOUNT, Ref("AWS::AccountId")))]
    if events_publish:
        statements.append(policies.allow_service("EventBridgeRulePublishes", "events.amazonaws.com",
                                                 [policies.SNS_PUBLISH], [Ref(topic)]))
    if s3_buckets:
        # The S3 guide's statement for an SNS destination: aws:SourceArn the bucket, aws:SourceAccount ours.
        statements.append(policies.allow_service(
            "S3ReportsFailedReplication", "s3.amazonaws.com", [policies.SNS_PUBLISH], [Ref(topic)],
            ArnLike(keys.SOURCE_ARN, [Sub(naming.bucket_arn_sub(b)) for b in s3_buckets]),
            StringEquals(keys.SOURCE_ACCOUNT, Ref("AWS::AccountId"))))
    return template.add_resource(sns.TopicPolicy(
        title, Topics=[Ref(topic)], PolicyDocument=policies.policy_document(statements)))


def dead_letter_queue(template: Template, *, environment: str, rule_titles: Sequence[str]) -> sqs.Queue:
    """Where EventBridge puts events it could not deliver; SQS-managed encryption, no KMS key."""
    queue = template.add_resource(sqs.Queue(
        "AuditEventDeadLetterQueue",
        QueueName=naming.dead_letter_queue_name(environment),
        SqsManagedSseEnabled=True,
        MessageRetentionPeriod=1_209_600,
        Tags=standard_tags(environment),
        Metadata=context("Keeps audit events EventBridge could not deliver to the alarm topic (14 days).",
                         must=["SQS-managed encryption, no KMS key: nothing on the alarm path uses a key"],
                         checkov={"skip": [{"id": "CKV_AWS_27", "comment": "Encrypted with SQS-managed keys "
                                            "(SqsManagedSseEnabled); no KMS key on the alarm path, which the person "
                                            "an alarm reports could disable (docs/decisions.md D26)."}]}),
        # Deleted with the stack, deliberately: its messages are copies of events the trail keeps for
        # years, and a retained queue would block redeploying the stack under the same name.
        DeletionPolicy="Delete",
        UpdateReplacePolicy="Delete",
    ))
    template.add_resource(sqs.QueuePolicy(
        "AuditEventDeadLetterQueuePolicy",
        Queues=[Ref(queue)],
        PolicyDocument=policies.policy_document([
            # The statement the EventBridge user guide documents for a rule's dead-letter queue.
            policies.allow_service("EventBridgeRuleSendsUndeliveredEvents", "events.amazonaws.com",
                                   [policies.SQS_SEND], [GetAtt(queue, "Arn")],
                                   ArnEquals(keys.SOURCE_ARN, [GetAtt(t, "Arn") for t in rule_titles])),
            policies.deny_insecure_transport([GetAtt(queue, "Arn")], [policies.SQS_ALL]),
        ]),
    ))
    return queue


def _alarm(template: Template, environment: str, title: str, description: str, actions: Sequence[Any],
           **metric: Any) -> cloudwatch.Alarm:
    return template.add_resource(cloudwatch.Alarm(
        f"{title}Alarm",
        AlarmName=naming.alarm_name(environment, title),
        AlarmDescription=description,
        ActionsEnabled=True,
        AlarmActions=list(actions),
        Metadata=context(f"Wakes someone for {title}; what it means is in AlarmDescription."),
        **metric,
    ))


def _specs(watched: Sequence[WatchedEvent], literal: Sequence[LiteralFilter]) -> list[tuple[str, str, str, int]]:
    """``(title, description, filter pattern, threshold)`` for every watched event and literal filter."""
    return ([(w.title, w.description, filter_pattern([w]), 1) for w in watched]
            + [(f.title, f.description, f.pattern, f.threshold) for f in literal])


def metric_filters(template: Template, *, environment: str, log_group: Any, watched: Sequence[WatchedEvent],
                   literal: Sequence[LiteralFilter], keys: dict[str, Any]) -> None:
    """A metric filter on the trail's log group per watched event and literal filter (``keys``:
    values for ``${PhiKeyArn}``, ``${PhiKeyId}`` and ``${AuditKeyArn}``)."""
    namespace = naming.metric_namespace(environment)
    for title, _, pattern, _ in _specs(watched, literal):
        template.add_resource(logs.MetricFilter(
            f"{title}Filter",
            LogGroupName=log_group,
            FilterName=naming.metric_filter_name(environment, title),
            FilterPattern=bind(pattern, keys) if "${" in pattern else pattern,
            MetricTransformations=[logs.MetricTransformation(
                MetricNamespace=namespace, MetricName=title, MetricValue="1")],
            Metadata=context(f"Counts the events the {title} alarm (alarm stack) reports."),
        ))


def event_alarms(template: Template, *, environment: str, watched: Sequence[WatchedEvent],
                 literal: Sequence[LiteralFilter], actions: Sequence[Any], watchdog: Any,
                 also_watchdog: set[str]) -> list[cloudwatch.Alarm]:
    """An alarm on each metric the filters count; one matching event raises it. The alarms in
    ``also_watchdog`` (changes to the alarm topic) notify the watchdog topic too."""
    namespace = naming.metric_namespace(environment)
    return [_alarm(template, environment, title, description,
                   [*actions[:1], watchdog, *actions[1:]] if title in also_watchdog else actions,
                   Namespace=namespace, MetricName=title, Statistic="Sum", Period=ALARM_PERIOD,
                   EvaluationPeriods=EVALUATION_PERIODS, DatapointsToAlarm=1, Threshold=threshold,
                   ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching")
            for title, description, _, threshold in _specs(watched, literal)]


def health_alarms(template: Template, *, environment: str, rules: Sequence[events.Rule], queue: sqs.Queue,
                  alarm_topic: sns.Topic, watchdog: sns.Topic, external: Sequence[Any]) -> None:
    """The delivery path watched from outside it: log delivery, the rule, its queue, both topics."""
    def alarm(title: str, description: str, actions: Sequence[Any], namespace: str, metric: str,
              dimensions: dict[str, Any], comparison: str = "GreaterThanOrEqualToThreshold",
              missing: str = "notBreaching", period: int = ALARM_PERIOD, periods: int = 1,
              statistic: str = "Sum") -> None:
        _alarm(template, environment, title, description, [*actions, *external],
               Namespace=namespace, MetricName=metric, Statistic=statistic, Period=period,
               EvaluationPeriods=periods, DatapointsToAlarm=periods, Threshold=1, ComparisonOperator=comparison,
               TreatMissingData=missing,
               Dimensions=[cloudwatch.MetricDimension(Name=k, Value=v) for k, v in dimensions.items()])

    alarm("TrailLogDeliveryStopped",
          "No CloudTrail events reached the trail's log group for an hour: the trail was stopped or changed, the "
          "audit key was disabled, or delivery broke. Every metric-filter alarm is blind until this clears.",
          [Ref(alarm_topic), Ref(watchdog)], "AWS/Logs", "IncomingLogEvents",
          {"LogGroupName": naming.log_group_name(environment)}, comparison="LessThanThreshold",
          missing="breaching", period=HEARTBEAT_PERIOD, periods=HEARTBEAT_PERIODS)
    # One alarm on the sum of every rule's FailedInvocations (metric math), not one per rule.
    _alarm(template, environment, "AuditEventRuleFailed",
           "EventBridge could not deliver audit events to the alarm topic (FailedInvocations of any audit-event "
           "rule): the topic or its policy may have been changed. Undelivered events are in the dead-letter queue.",
           [Ref(watchdog), *external], EvaluationPeriods=1, DatapointsToAlarm=1, Threshold=1,
           ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching",
           Metrics=[*(cloudwatch.MetricDataQuery(
               Id=f"rule{i}", ReturnData=False, MetricStat=cloudwatch.MetricStat(
                   Period=ALARM_PERIOD, Stat="Sum", Metric=cloudwatch.Metric(
                       Namespace="AWS/Events", MetricName="FailedInvocations",
                       Dimensions=[cloudwatch.MetricDimension(Name="RuleName", Value=Ref(rule))])))
               for i, rule in enumerate(rules)),
               cloudwatch.MetricDataQuery(Id="failed", Label="FailedInvocations of every audit-event rule",
                                          Expression=f"SUM([{', '.join(f'rule{i}' for i in range(len(rules)))}])",
                                          ReturnData=True)])
    alarm("AuditEventsDeadLettered",
          "Audit events are waiting in the dead-letter queue: they never reached the alarm topic. Read them.",
          [Ref(watchdog)], "AWS/SQS", "ApproximateNumberOfMessagesVisible",
          {"QueueName": GetAtt(queue, "QueueName")}, statistic="Maximum")
    alarm("AlarmTopicDeliveryFailed",
          "The alarm topic failed to deliver notifications to a subscriber: alarms may not be reaching people.",
          [Ref(watchdog)], "AWS/SNS", "NumberOfNotificationsFailed", {"TopicName": GetAtt(alarm_topic, "TopicName")})
    alarm("WatchdogTopicDeliveryFailed",
          "The watchdog topic failed to deliver notifications to a subscriber.",
          [Ref(alarm_topic)], "AWS/SNS", "NumberOfNotificationsFailed", {"TopicName": GetAtt(watchdog, "TopicName")})


def forwarding_alarms(template: Template, *, environment: str, rule: events.Rule, queue: sqs.Queue,
                      topic: sns.Topic) -> None:
    """A DR region's forwarding rule watched from its own region: failed forwards, and events left in
    its dead-letter queue, reported through a topic there (CloudWatch alarms notify topics in their
    own region)."""
    common: dict[str, Any] = dict(Statistic="Sum", Period=ALARM_PERIOD, EvaluationPeriods=1, DatapointsToAlarm=1,
                                  Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
                                  TreatMissingData="notBreaching")
    _alarm(template, environment, "AuditEventForwardFailed",
           "EventBridge could not forward this region's audit events to the home region's bus; they are in the "
           "dead-letter queue here. The metric-filter channel (multi-Region trail) still reports them.",
           [Ref(topic)], Namespace="AWS/Events", MetricName="FailedInvocations",
           Dimensions=[cloudwatch.MetricDimension(Name="RuleName", Value=Ref(rule))], **common)
    _alarm(template, environment, "ForwardedEventsDeadLettered",
           "Audit events from this region are waiting in its dead-letter queue: they never reached the home region.",
           [Ref(topic)], Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible",
           Dimensions=[cloudwatch.MetricDimension(Name="QueueName", Value=GetAtt(queue, "QueueName"))],
           **{**common, "Statistic": "Maximum"})


def audit_event_rules(template: Template, *, environment: str, watched: Sequence[WatchedEvent],
                      groups: dict[str, tuple[tuple[str, ...], bool]], targets: Sequence[Any],
                      watchdog: Any, dead_letter_arn: Any) -> list[events.Rule]:
    """EventBridge channel: the same watched events, straight from CloudTrail to the topics, one
    rule per group (D30). Each rule lists the events it watches in its Metadata."""
    by_title = {w.title: w for w in watched}
    rules = []
    for group, (titles, to_watchdog) in groups.items():
        mine = [by_title[t] for t in titles if t in by_title]
        if not mine:
            continue
        arns = [*targets, watchdog] if to_watchdog else list(targets)
        rules.append(template.add_resource(events.Rule(
            f"AuditEventRule{group}",
            Name=naming.event_rule_name(environment, f"audit-events-{group.lower()}"),
            Description=f"{group}: tampering reported independently of log delivery",
            State="ENABLED",
            EventPattern=bind(event_pattern(mine), key_variables(environment)),
            Targets=[events.Target(
                Id=f"Topic{i}", Arn=arn,
                DeadLetterConfig=events.DeadLetterConfig(Arn=dead_letter_arn),
                RetryPolicy=events.RetryPolicy(MaximumEventAgeInSeconds=86_400, MaximumRetryAttempts=185),
            ) for i, arn in enumerate(arns)],
            Metadata={**context("Second channel for the watched events; does not wait for CloudWatch Logs "
                                "delivery."), "ScrybeWatches": [w.title for w in mine]},
        )))
    return rules
