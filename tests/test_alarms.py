"""Metric filters, alarms, the EventBridge channel and the topic; and that the path from a
DisableKey event to a person never depends on the PHI key (decision D5)."""

from __future__ import annotations

import json
from typing import Any

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.template import alarms, render
from scrybe_kms.template.alarms import CIS_4_7_PATTERN
from tests.helpers import config, refs, resources_of_type, statements
from tests.support.event_pattern import as_eventbridge_event
from tests.support.event_pattern import matches as event_matches
from tests.support.events import KEY_ARN, OTHER_KEY_ARN, direct_grant_event, kms_event, service_grant_event
from tests.support.filter_pattern import matches as filter_matches


def filters(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in resources_of_type(template, "AWS::Logs::MetricFilter").items()}


def test_cis_4_7_filter_uses_the_exact_pattern(template: dict[str, Any]) -> None:
    assert CIS_4_7_PATTERN == ("{($.eventSource=kms.amazonaws.com) && (($.eventName=DisableKey) || "
                               "($.eventName=ScheduleKeyDeletion))}")
    cis = filters(template)["KmsKeyDisabledOrDeletionScheduledCis47Filter"]
    assert cis["FilterPattern"] == CIS_4_7_PATTERN
    assert cis["LogGroupName"] == {"Ref": "AuditTrailLogGroup"}


def test_key_filters_match_this_key_only(template: dict[str, Any]) -> None:
    found = filters(template)
    for title, event in (("PhiKeyDisabledFilter", "DisableKey"),
                         ("PhiKeyDeletionScheduledFilter", "ScheduleKeyDeletion")):
        assert found[title]["FilterPattern"] == {"Fn::Sub": [
            '{ ($.eventSource = "kms.amazonaws.com") && ($.eventName = "' + event
            + '") && ($.resources[0].ARN = "${KeyArn}") }',
            {"KeyArn": {"Fn::GetAtt": ["PhiKey", "Arn"]}}]}
        assert found[title]["LogGroupName"] == {"Ref": "AuditTrailLogGroup"}


ALWAYS = {"KmsKeyDisabledOrDeletionScheduledCis47", "PhiKeyDisabled", "PhiKeyDeletionScheduled",
          "PhiKeyPolicyChanged", "PhiKeyGrantCreated", "PhiKeyRotationDisabled", "PhiKeyAccessDeniedBurst"}


def test_the_alarm_set(template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    expected = ALWAYS | ({"EmergencyRoleUsed"} if cfg.emergency_access_role_arn else set())
    assert {t.removesuffix("Filter") for t in filters(template)} == expected


def test_emergency_role_filter_names_the_role(template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    if cfg.emergency_access_role_arn is None:
        return
    arn = cfg.emergency_access_role_arn
    assert filters(template)["EmergencyRoleUsedFilter"]["FilterPattern"] == (
        '{ ($.userIdentity.sessionContext.sessionIssuer.arn = "' + arn + '") || '
        '(($.eventName = "AssumeRole") && ($.requestParameters.roleArn = "' + arn + '")) }')


def test_access_denied_burst_needs_five_in_five_minutes(template: dict[str, Any]) -> None:
    alarm = template["Resources"]["PhiKeyAccessDeniedBurstAlarm"]["Properties"]
    assert (alarm["Threshold"], alarm["Period"], alarm["EvaluationPeriods"]) == (5, 300, 1)


def test_each_filter_feeds_an_alarm_that_notifies(template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    alarms = {k: v["Properties"] for k, v in resources_of_type(template, "AWS::CloudWatch::Alarm").items()}
    assert len(alarms) == len(filters(template)) >= 7
    for title, f in filters(template).items():
        [transform] = f["MetricTransformations"]
        alarm = alarms[title.removesuffix("Filter") + "Alarm"]
        assert (alarm["Namespace"], alarm["MetricName"]) == (transform["MetricNamespace"], transform["MetricName"])
        assert transform["MetricValue"] == "1"
        assert alarm["Statistic"] == "Sum"
        assert alarm["Threshold"] >= 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        if title != "PhiKeyAccessDeniedBurstFilter":
            assert (alarm["Threshold"], alarm["Period"]) == (1, 60), "one event must be enough"
        assert alarm["EvaluationPeriods"] == 1
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["ActionsEnabled"] is True
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        assert alarm["AlarmName"].startswith(f"scrybe-phi-{cfg.environment}-")


def test_existing_topic_is_notified_too() -> None:
    topic = "arn:aws:sns:us-west-2:123456789012:security"
    template = json.loads(render(config(alarm_topic_arn=topic)))
    for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}, topic]


def test_topic_is_encrypted_with_the_audit_key_and_subscribes_emails(template: dict[str, Any],
                                                                     cfg: EnvironmentConfig) -> None:
    topic = template["Resources"]["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": ["AuditKey", "Arn"]}
    assert topic["Subscription"] == [{"Protocol": "email", "Endpoint": e} for e in cfg.alarm_emails]
    publish = statements(template["Resources"]["AuditKey"]["Properties"]["KeyPolicy"])["AlarmPublishersUseTopicKey"]
    assert publish["Principal"] == {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]}
    assert publish["Action"] == ["kms:GenerateDataKey*", "kms:Decrypt"]


def test_topic_policy_lets_only_this_stacks_alarms_and_rule_publish(template: dict[str, Any], env: str) -> None:
    policy = statements(template["Resources"]["AlarmTopicPolicy"]["Properties"]["PolicyDocument"])
    assert policy["CloudWatchAlarmsPublish"]["Condition"] == {
        "ArnLike": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:"
                                                 f"${{AWS::AccountId}}:alarm:scrybe-phi-{env}-*"}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    assert policy["KeyEventRulePublishes"]["Condition"] == {
        "ArnLike": {"aws:SourceArn": {"Fn::GetAtt": ["PhiKeyEventRule", "Arn"]}}}
    for statement in policy.values():
        assert statement["Action"] == ["sns:Publish"]
        assert statement["Resource"] == [{"Ref": "AlarmTopic"}]


def _resolved_rule(template: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(template["Resources"]["PhiKeyEventRule"]["Properties"]["EventPattern"])
    return json.loads(text.replace(json.dumps({"Fn::GetAtt": ["PhiKey", "Arn"]}), json.dumps(KEY_ARN)))


SAMPLES = [kms_event(name) for name in ("DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy", "DisableKeyRotation",
                                        "EnableKey", "Decrypt", "CreateGrant")] + [
    kms_event("DisableKey", OTHER_KEY_ARN), direct_grant_event(), service_grant_event(),
    service_grant_event(service="dynamodb.amazonaws.com"), direct_grant_event(OTHER_KEY_ARN)]


def test_eventbridge_rule_reports_the_same_events_as_the_key_filters(template: dict[str, Any]) -> None:
    """The second channel fires for exactly the events the PHI-key filters with an EventBridge
    counterpart count: same key, same operations, the same rule for grants."""
    rule = template["Resources"]["PhiKeyEventRule"]["Properties"]
    assert rule["State"] == "ENABLED"
    assert rule["Targets"] == [{"Id": "AlarmTopic", "Arn": {"Ref": "AlarmTopic"}}]
    pattern = _resolved_rule(template)
    filters = [spec.pattern.replace("${KeyArn}", KEY_ARN) for spec in alarms.KEY_ALARMS if spec.event_names]
    for event in SAMPLES:
        by_filter = any(filter_matches(f, event) for f in filters)
        assert event_matches(pattern, as_eventbridge_event(event)) == by_filter, (event["eventName"], by_filter)


def test_a_grant_for_an_aws_resource_raises_nothing_and_a_direct_grant_does(template: dict[str, Any]) -> None:
    pattern = _resolved_rule(template)
    assert event_matches(pattern, as_eventbridge_event(direct_grant_event()))
    assert not event_matches(pattern, as_eventbridge_event(service_grant_event()))


def test_alarm_path_never_depends_on_the_phi_key(template: dict[str, Any]) -> None:
    """Disabling the PHI key must not silence its own alarm: the log group, the topic, the
    topic's key and its policy are encrypted with / depend on the audit key only. (Filters and
    the rule *mention* the PHI key's ARN as text to match; that needs no use of the key.)"""
    resources = template["Resources"]
    assert refs(resources["AuditTrailLogGroup"]["Properties"]["KmsKeyId"]) == {"AuditKey"}
    assert refs(resources["AlarmTopic"]["Properties"]) == {"AuditKey"}
    assert "PhiKey" not in refs(resources["AuditKey"])
    assert "PhiKey" not in refs(resources["AlarmTopicPolicy"])
    for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values():
        assert refs(alarm) == {"AlarmTopic"}
    for f in resources_of_type(template, "AWS::Logs::MetricFilter").values():
        assert refs(f) <= {"AuditTrailLogGroup", "PhiKey"}
        assert refs(f["Properties"]["LogGroupName"]) == {"AuditTrailLogGroup"}
