"""Metric filters, alarms, the EventBridge channel and the topic; and that the path from a
DisableKey event to a person never depends on the PHI key (pitfall 4)."""

from __future__ import annotations

import json
from typing import Any

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.template import render
from scrybe_kms.template.alarms import CIS_4_7_PATTERN
from tests.helpers import config, refs, resources_of_type, statements


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


def test_eventbridge_rule_reports_the_same_events(template: dict[str, Any]) -> None:
    rule = template["Resources"]["PhiKeyEventRule"]["Properties"]
    assert rule["State"] == "ENABLED"
    assert rule["EventPattern"] == {
        "source": ["aws.kms"], "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventSource": ["kms.amazonaws.com"], "eventName": [
                       "CreateGrant", "DisableKey", "DisableKeyRotation", "PutKeyPolicy", "ScheduleKeyDeletion"],
                   "resources": {"ARN": [{"Fn::GetAtt": ["PhiKey", "Arn"]}]}}}
    assert rule["Targets"] == [{"Id": "AlarmTopic", "Arn": {"Ref": "AlarmTopic"}}]


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
