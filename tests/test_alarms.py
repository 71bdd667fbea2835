"""The alarm stack: alarms on every metric filter, the topics, the EventBridge rule with its
dead-letter queue, the health alarms; and that both channels report the same events."""

from __future__ import annotations

import json
from typing import Any

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.template import render_alarms, render_filters
from scrybe_kms.template.monitoring import CIS_4_5_PATTERN, CIS_4_7_PATTERN, CIS_4_8_PATTERN
from tests.helpers import config, refs, resources_of_type, statements
from tests.support.event_pattern import as_eventbridge_event
from tests.support.event_pattern import matches as event_matches
from tests.support.filter_pattern import matches as filter_matches
from tests.test_filter_patterns import CASES, rendered_patterns, resolve_sub

KEY_EVENTS = {"PhiKeyDisabled", "PhiKeyDeletionScheduled", "PhiKeyPolicyChanged", "PhiKeyGrantCreated",
              "PhiKeyRotationDisabled", "AuditKeyTampered", "KeyAliasChanged"}
#: Watched on both channels; the rest (CIS patterns, the burst) are filter-only.
WATCHED = KEY_EVENTS | {"AuditTrailTampered", "AuditBucketTampered", "AlarmPathTampered", "AlarmDeliveryTampered",
                        "EmergencyRoleUsed"}
LITERAL = {"KmsKeyDisabledOrDeletionScheduledCis47", "CloudTrailConfigurationChangedCis45",
           "S3BucketPolicyChangedCis48", "PhiKeyAccessDeniedBurst"}
HEALTH = {"TrailLogDeliveryStopped", "AuditEventRuleFailed", "AuditEventsDeadLettered", "AlarmTopicDeliveryFailed",
          "WatchdogTopicDeliveryFailed"}


def filters(*templates: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k.removesuffix("Filter"): v["Properties"] for t in templates
            for k, v in resources_of_type(t, "AWS::Logs::MetricFilter").items()}


def alarms_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k.removesuffix("Alarm"): v["Properties"]
            for k, v in resources_of_type(template, "AWS::CloudWatch::Alarm").items()}


def test_cis_filters_use_the_exact_patterns(filter_template: dict[str, Any]) -> None:
    """Security Hub CloudWatch.7, .5 and .8 compare the patterns literally."""
    assert CIS_4_7_PATTERN == ("{($.eventSource=kms.amazonaws.com) && (($.eventName=DisableKey) || "
                               "($.eventName=ScheduleKeyDeletion))}")
    assert CIS_4_5_PATTERN == ("{($.eventName=CreateTrail) || ($.eventName=UpdateTrail) || ($.eventName=DeleteTrail) "
                               "|| ($.eventName=StartLogging) || ($.eventName=StopLogging)}")
    assert CIS_4_8_PATTERN.startswith("{($.eventSource=s3.amazonaws.com) && (($.eventName=PutBucketAcl) || ")
    found = filters(filter_template)
    assert found["KmsKeyDisabledOrDeletionScheduledCis47"]["FilterPattern"] == CIS_4_7_PATTERN
    assert found["CloudTrailConfigurationChangedCis45"]["FilterPattern"] == CIS_4_5_PATTERN
    assert found["S3BucketPolicyChangedCis48"]["FilterPattern"] == CIS_4_8_PATTERN


def test_every_filter_is_in_the_filter_stack_and_reads_the_trails_log_group(
        template: dict[str, Any], filter_template: dict[str, Any], alarm_template: dict[str, Any]) -> None:
    assert filters(template) == {} and filters(alarm_template) == {}
    for f in filters(filter_template).values():
        assert f["LogGroupName"] == template["Resources"]["AuditTrailLogGroup"]["Properties"]["LogGroupName"]


def test_the_alarm_set(filter_template: dict[str, Any], alarm_template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    watched = WATCHED - (set() if cfg.emergency_access_role_arn else {"EmergencyRoleUsed"})
    dr = {"DrAuditBucketTampered", "DrRolesChanged"} if cfg.disaster_recovery_regions else set()
    assert set(filters(filter_template)) == watched | LITERAL | dr
    # The metric-filter channel's alarms sit beside their filters; the alarm stack keeps the health alarms.
    assert set(alarms_of(filter_template)) == watched | LITERAL | dr
    assert set(alarms_of(alarm_template)) == HEALTH


def test_each_filter_feeds_an_alarm_that_cannot_miss_a_late_event(
        filter_template: dict[str, Any], alarm_template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    """One matching event in any of the last three 5-minute periods raises the alarm (D27)."""
    alarms = alarms_of(filter_template)
    topic, watchdog = ({"Fn::ImportValue": f"scrybe-kms-{cfg.environment}-{name}"}
                       for name in ("AlarmTopicArn", "WatchdogTopicArn"))
    exported = {o["Export"]["Name"]: o["Value"] for o in alarm_template["Outputs"].values()}
    assert (exported[topic["Fn::ImportValue"]], exported[watchdog["Fn::ImportValue"]]) == (
        {"Ref": "AlarmTopic"}, {"Ref": "WatchdogTopic"})
    for title, f in filters(filter_template).items():
        [transform] = f["MetricTransformations"]
        alarm = alarms[title]
        assert (alarm["Namespace"], alarm["MetricName"]) == (transform["MetricNamespace"], transform["MetricName"])
        assert transform["MetricValue"] == "1" and alarm["Statistic"] == "Sum"
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["Threshold"] == (5 if title == "PhiKeyAccessDeniedBurst" else 1), "one event must be enough"
        assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (300, 3, 1)
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["ActionsEnabled"] is True
        # A change to the alarm topic is reported to the watchdog too, never only through that topic.
        assert alarm["AlarmActions"] == ([topic, watchdog] if title in {"AlarmPathTampered", "AlarmDeliveryTampered"}
                                         else [topic])
        assert alarm["AlarmName"] == f"scrybe-phi-{cfg.environment}-{title}"


def test_existing_topic_is_notified_and_targeted_too() -> None:
    topic = "arn:aws:sns:us-west-2:123456789012:security"
    template = json.loads(render_alarms(config(alarm_topic_arn=topic)))
    filter_stack = json.loads(render_filters(config(alarm_topic_arn=topic)))
    alarms = {**resources_of_type(template, "AWS::CloudWatch::Alarm"),
              **resources_of_type(filter_stack, "AWS::CloudWatch::Alarm")}
    assert len(alarms) > 20
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"][-1] == topic
    for rule in resources_of_type(template, "AWS::Events::Rule").values():
        assert topic in [t["Arn"] for t in rule["Properties"]["Targets"]]


def test_topics_are_unencrypted_and_subscribe_the_addresses(alarm_template: dict[str, Any],
                                                           cfg: EnvironmentConfig) -> None:
    """No KMS key on the delivery path: a key an alarm reports on could silence it (D26)."""
    for title in ("AlarmTopic", "WatchdogTopic"):
        resource = alarm_template["Resources"][title]
        assert "KmsMasterKeyId" not in resource["Properties"]
        emails = [{"Protocol": "email", "Endpoint": e} for e in cfg.alarm_emails]
        assert resource["Properties"]["Subscription"] == emails
        [skip] = resource["Metadata"]["checkov"]["skip"]
        assert skip["id"] == "CKV_AWS_26" and "D26" in skip["comment"]


def test_topic_policies(alarm_template: dict[str, Any], env: str) -> None:
    alarm_arns = {"Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:"
                             f"scrybe-phi-{env}-*"}
    for title, topic in (("AlarmTopicPolicy", "AlarmTopic"), ("WatchdogTopicPolicy", "WatchdogTopic")):
        policy = statements(alarm_template["Resources"][title]["Properties"]["PolicyDocument"])
        assert policy["CloudWatchAlarmsPublish"]["Condition"] == {
            "ArnLike": {"aws:SourceArn": alarm_arns}, "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
        for statement in policy.values():
            assert statement["Action"] == ["sns:Publish"] and statement["Resource"] == [{"Ref": topic}]
    for title, topic in (("AlarmTopicPolicy", "AlarmTopic"), ("WatchdogTopicPolicy", "WatchdogTopic")):
        policy = statements(alarm_template["Resources"][title]["Properties"]["PolicyDocument"])
        # EventBridge's user guide: no Condition block in an SNS topic policy for EventBridge (D23).
        assert policy["EventBridgeRulePublishes"] == {
            "Sid": "EventBridgeRulePublishes", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["sns:Publish"], "Resource": [{"Ref": topic}]}


def rules_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources_of_type(template, "AWS::Events::Rule")


def test_rules_deliver_with_retries_and_a_dead_letter_queue(alarm_template: dict[str, Any]) -> None:
    rules = rules_of(alarm_template)
    assert len(rules) >= 4
    for title, rule in rules.items():
        props = rule["Properties"]
        assert props["State"] == "ENABLED"
        watchdog_too = set(rule["Metadata"]["ScrybeWatches"]) & {"AlarmPathTampered", "AlarmDeliveryTampered"}
        assert [t["Arn"] for t in props["Targets"]] == (
            [{"Ref": "AlarmTopic"}, {"Ref": "WatchdogTopic"}] if watchdog_too else [{"Ref": "AlarmTopic"}]), title
        for target in props["Targets"]:
            assert "RoleArn" not in target
            assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["AuditEventDeadLetterQueue", "Arn"]}}
            assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    # Every watched event is in exactly one rule.
    watched = [t for r in rules.values() for t in r["Metadata"]["ScrybeWatches"]]
    assert sorted(watched) == sorted(set(watched))
    queue = alarm_template["Resources"]["AuditEventDeadLetterQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True and "KmsMasterKeyId" not in queue
    policy = statements(alarm_template["Resources"]["AuditEventDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"])
    send = policy["EventBridgeRuleSendsUndeliveredEvents"]
    assert send["Principal"] == {"Service": "events.amazonaws.com"} and send["Action"] == ["sqs:SendMessage"]
    sources = send["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(s["Fn::GetAtt"][0] for s in sources) == sorted(rules) and set(send["Condition"]) == {"ArnEquals"}
    assert policy["DenyInsecureTransport"]["Effect"] == "Deny"


#: Longest plausible values for what CloudFormation substitutes: a partition, a region, a key ARN.
LONGEST = {"${AWS::Partition}": "aws-us-gov", "${AWS::Region}": "ap-southeast-5", "${AWS::AccountId}": "123456789012",
           "${PhiKeyArn}": "arn:aws-us-gov:kms:ap-southeast-5:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab",
           "${AuditKeyArn}": "arn:aws-us-gov:kms:ap-southeast-5:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab",
           "${PhiKeyId}": "mrk-1234abcd12ab34cd56ef1234567890ab"}


def test_every_rule_pattern_fits_eventbridges_limit(alarm_template: dict[str, Any]) -> None:
    """EventBridge caps an event pattern at 2,048 characters by default (D30)."""
    for title, rule in rules_of(alarm_template).items():
        def filled(node: Any) -> Any:
            if isinstance(node, dict) and "Fn::Sub" in node:
                text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
                for name, value in LONGEST.items():
                    text = text.replace(name, value)
                return text
            if isinstance(node, dict):
                return {k: filled(v) for k, v in node.items()}
            if isinstance(node, list):
                return [filled(v) for v in node]
            return node
        size = len(json.dumps(filled(rule["Properties"]["EventPattern"]), separators=(",", ":")))
        assert size <= 2048 - 128, (title, size)


def test_health_alarms_watch_the_delivery_path_from_outside_it(alarm_template: dict[str, Any], env: str) -> None:
    alarms = alarms_of(alarm_template)
    beat = alarms["TrailLogDeliveryStopped"]
    assert (beat["Namespace"], beat["MetricName"]) == ("AWS/Logs", "IncomingLogEvents")
    assert beat["Dimensions"] == [{"Name": "LogGroupName", "Value": f"/scrybe/kms/{env}/cloudtrail"}]
    assert (beat["ComparisonOperator"], beat["Threshold"], beat["TreatMissingData"]) == (
        "LessThanThreshold", 1, "breaching"), "silence itself must raise it"
    assert beat["Period"] * beat["EvaluationPeriods"] == 3600
    assert beat["AlarmActions"] == [{"Ref": "AlarmTopic"}, {"Ref": "WatchdogTopic"}]
    expected = {
        "AuditEventsDeadLettered": ("AWS/SQS", "ApproximateNumberOfMessagesVisible",
                                    {"QueueName": {"Fn::GetAtt": ["AuditEventDeadLetterQueue", "QueueName"]}},
                                    "WatchdogTopic"),
        "AlarmTopicDeliveryFailed": ("AWS/SNS", "NumberOfNotificationsFailed",
                                     {"TopicName": {"Fn::GetAtt": ["AlarmTopic", "TopicName"]}}, "WatchdogTopic"),
        "WatchdogTopicDeliveryFailed": ("AWS/SNS", "NumberOfNotificationsFailed",
                                        {"TopicName": {"Fn::GetAtt": ["WatchdogTopic", "TopicName"]}}, "AlarmTopic"),
    }
    failed = alarms["AuditEventRuleFailed"]
    assert failed["AlarmActions"] == [{"Ref": "WatchdogTopic"}]
    queries = {q["Id"]: q for q in failed["Metrics"]}
    summed = [q for q in queries.values() if q.get("ReturnData")]
    assert len(summed) == 1 and summed[0]["Expression"].startswith("SUM([")
    measured = {q["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
                for q in queries.values() if "MetricStat" in q}
    assert measured == set(rules_of(alarm_template)), "every rule's FailedInvocations is summed"
    for title, (namespace, metric, dimensions, topic) in expected.items():
        alarm = alarms[title]
        assert (alarm["Namespace"], alarm["MetricName"]) == (namespace, metric)
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == dimensions
        assert alarm["AlarmActions"] == [{"Ref": topic}], title
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")


def test_eventbridge_rule_reports_the_same_events_as_the_filters(
        filter_templates: dict[str, dict[str, Any]], alarm_templates: dict[str, dict[str, Any]]) -> None:
    """Both channels, on every sample record of every filter test: the rule matches a record
    exactly when one of the watched-event filters does (the CIS and burst filters are filter-only)."""
    patterns = rendered_patterns(filter_templates["production"])
    rules = {title: (resolve_sub(r["Properties"]["EventPattern"]), r["Metadata"]["ScrybeWatches"])
             for title, r in rules_of(alarm_templates["production"]).items()}
    assert sorted(t for _, watches in rules.values() for t in watches) == sorted(WATCHED | {"DrAuditBucketTampered"})
    samples = [event for positive, negative in CASES.values() for event in positive + negative]
    assert len(samples) > 80
    for event in samples:
        for title, (pattern, watches) in rules.items():
            by_filter = any(filter_matches(patterns[t], event) for t in watches)
            assert event_matches(pattern, as_eventbridge_event(event)) == by_filter, (
                title, event["eventName"], event.get("requestParameters"))


def test_alarm_path_never_depends_on_the_phi_key(template: dict[str, Any], alarm_template: dict[str, Any]) -> None:
    """Disabling the PHI key must not silence its own alarm: the log group is encrypted with the
    audit key, the topics with nothing; filters and the rule only *mention* the PHI key's ARN."""
    resources = template["Resources"]
    assert refs(resources["AuditTrailLogGroup"]["Properties"]["KmsKeyId"]) == {"AuditKey"}
    for title, resource in alarm_template["Resources"].items():
        assert "PhiKey" not in refs(resource), title
        if resource["Type"] in ("AWS::SNS::Topic", "AWS::SQS::Queue"):
            assert "KmsMasterKeyId" not in resource["Properties"], title
