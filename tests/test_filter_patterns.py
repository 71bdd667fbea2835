"""Every metric filter against CloudTrail events that must, and must not, match it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.helpers import resources_of_type
from tests.support.events import (
    AUDIT_KEY_ARN,
    KEY_ARN,
    OTHER_KEY_ARN,
    alias_event,
    api_event,
    assume_role_event,
    direct_grant_event,
    kms_event,
    service_grant_event,
)
from tests.support.filter_pattern import PatternError, matches

EMERGENCY = "arn:aws:iam::123456789012:role/scrybe-emergency"
APP = "arn:aws:iam::123456789012:role/scrybe-production-app"
TRAIL = "scrybe-phi-audit-trail-production"
TRAIL_ARN = f"arn:aws:cloudtrail:us-west-2:123456789012:trail/{TRAIL}"
BUCKET = "scrybe-phi-audit-logs-123456789012-production"
ACCESS_LOGS = "scrybe-phi-audit-access-logs-123456789012-production"
LOG_GROUP = "/scrybe/kms/production/cloudtrail"
TOPIC = "arn:aws:sns:us-west-2:123456789012:scrybe-phi-key-alarms-production"
RULE = "scrybe-phi-production-audit-events"
PRIMARY = "alias/scrybe-phi-master-key-production"
#: The multi-Region PHI key's replica in the DR region: same key ID, another region in the ARN (D47).
REPLICA_KEY_ARN = KEY_ARN.replace(":us-west-2:", ":us-east-1:")
#: The same key ID in another account: not ours.
FOREIGN_KEY_ARN = KEY_ARN.replace(":123456789012:", ":210987654321:")
DR_BUCKET = "scrybe-phi-audit-logs-123456789012-production-us-east-1"
DR_ACCESS_LOGS = "scrybe-phi-access-logs-123456789012-production-us-east-1"

# filter title -> (events that must match, events that must not)
CASES: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    "KmsKeyDisabledOrDeletionScheduledCis47": (
        [kms_event("DisableKey"), kms_event("ScheduleKeyDeletion"), kms_event("DisableKey", OTHER_KEY_ARN)],
        [kms_event("EnableKey"), kms_event("CancelKeyDeletion"), kms_event("Decrypt"),
         kms_event("DisableKey", source="notkms.amazonaws.com")],
    ),
    "CloudTrailConfigurationChangedCis45": (
        [api_event("cloudtrail", name, {"name": "any-trail"}) for name in
         ("CreateTrail", "UpdateTrail", "DeleteTrail", "StartLogging", "StopLogging")],
        [api_event("cloudtrail", "DescribeTrails", {}), api_event("cloudtrail", "LookupEvents", {})],
    ),
    "S3BucketPolicyChangedCis48": (
        [api_event("s3", "PutBucketPolicy", {"bucketName": "any"}), api_event("s3", "PutBucketLifecycle",
                                                                           {"bucketName": "any"})],
        [api_event("s3", "GetBucketPolicy", {"bucketName": "any"}),
         api_event("s3", "PutBucketVersioning", {"bucketName": "any"})],
    ),
    "PhiKeyDisabled": (
        [kms_event("DisableKey"), kms_event("DisableKey", REPLICA_KEY_ARN)],
        [kms_event("DisableKey", OTHER_KEY_ARN), kms_event("EnableKey"), kms_event("ScheduleKeyDeletion"),
         kms_event("DisableKey", FOREIGN_KEY_ARN),
         # A denied attempt pages nobody here; the burst alarm counts failures (D24).
         kms_event("DisableKey", error_code="AccessDeniedException")],
    ),
    "PhiKeyDeletionScheduled": (
        [kms_event("ScheduleKeyDeletion"), kms_event("ScheduleKeyDeletion", REPLICA_KEY_ARN)],
        [kms_event("ScheduleKeyDeletion", OTHER_KEY_ARN), kms_event("CancelKeyDeletion"), kms_event("DisableKey"),
         kms_event("ScheduleKeyDeletion", error_code="AccessDeniedException")],
    ),
    "PhiKeyPolicyChanged": (
        # A multi-Region key: its replica's policy, a new replica (with a policy its caller wrote), a
        # moved primary region (D47).
        [kms_event("PutKeyPolicy"), kms_event("PutKeyPolicy", REPLICA_KEY_ARN), kms_event("ReplicateKey"),
         kms_event("UpdatePrimaryRegion", REPLICA_KEY_ARN)],
        [kms_event("PutKeyPolicy", OTHER_KEY_ARN), kms_event("GetKeyPolicy"),
         kms_event("PutKeyPolicy", AUDIT_KEY_ARN), kms_event("ReplicateKey", OTHER_KEY_ARN),
         kms_event("ReplicateKey", error_code="AccessDeniedException")],
    ),
    "PhiKeyGrantCreated": (
        [kms_event("CreateGrant", role_arn=EMERGENCY), direct_grant_event(), direct_grant_event(REPLICA_KEY_ARN)],
        [kms_event("CreateGrant", OTHER_KEY_ARN), kms_event("ListGrants"), kms_event("RevokeGrant"),
         # RDS, DynamoDB, EBS ... attaching the key: expected whenever a consumer stack deploys.
         service_grant_event(), service_grant_event(service="dynamodb.amazonaws.com")],
    ),
    "PhiKeyRotationDisabled": (
        [kms_event("DisableKeyRotation"), kms_event("DisableKeyRotation", REPLICA_KEY_ARN)],
        [kms_event("EnableKeyRotation"), kms_event("DisableKeyRotation", OTHER_KEY_ARN)],
    ),
    "AuditKeyTampered": (
        [kms_event(name, AUDIT_KEY_ARN) for name in
         ("DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy", "DisableKeyRotation", "CreateGrant")],
        [kms_event("DisableKey"), kms_event("EnableKey", AUDIT_KEY_ARN), kms_event("Decrypt", AUDIT_KEY_ARN),
         kms_event("DisableKey", AUDIT_KEY_ARN, error_code="AccessDeniedException")],
    ),
    "KeyAliasChanged": (
        [alias_event("UpdateAlias", PRIMARY, OTHER_KEY_ARN), alias_event("DeleteAlias", PRIMARY),
         alias_event("CreateAlias", "alias/scrybe-phi-audit-key-production", AUDIT_KEY_ARN)],
        [alias_event("UpdateAlias", "alias/someone-else", OTHER_KEY_ARN),
         alias_event("UpdateAlias", PRIMARY, OTHER_KEY_ARN, error_code="AccessDeniedException")],
    ),
    "AuditTrailTampered": (
        [api_event("cloudtrail", "StopLogging", {"name": TRAIL}),
         api_event("cloudtrail", "StopLogging", {"name": TRAIL_ARN}),
         api_event("cloudtrail", "DeleteTrail", {"name": TRAIL}),
         api_event("cloudtrail", "UpdateTrail", {"name": TRAIL, "isMultiRegionTrail": False}),
         api_event("cloudtrail", "PutEventSelectors", {"trailName": TRAIL_ARN, "eventSelectors": []})],
        [api_event("cloudtrail", "StopLogging", {"name": "another-trail"}),
         api_event("cloudtrail", "StartLogging", {"name": TRAIL}),
         api_event("cloudtrail", "StopLogging", {"name": TRAIL}, error_code="AccessDenied")],
    ),
    "AuditBucketTampered": (
        [api_event("s3", name, {"bucketName": bucket}) for name, bucket in
         (("PutBucketPolicy", BUCKET), ("DeleteBucketPolicy", BUCKET), ("PutBucketLifecycle", BUCKET),
          ("PutBucketVersioning", BUCKET), ("PutObjectLockConfiguration", BUCKET),
          ("PutBucketLogging", BUCKET), ("DeleteBucketPolicy", ACCESS_LOGS))],
        [api_event("s3", "PutBucketPolicy", {"bucketName": "someone-elses-bucket"}),
         api_event("s3", "GetBucketPolicy", {"bucketName": BUCKET}),
         api_event("s3", "PutBucketPolicy", {"bucketName": BUCKET}, error_code="AccessDenied")],
    ),
    # The DR copies, in any DR region (the multi-Region trail brings their events home).
    "DrAuditBucketTampered": (
        [api_event("s3", name, {"bucketName": bucket}) for name, bucket in
         (("PutBucketPolicy", DR_BUCKET), ("PutBucketLifecycle", DR_BUCKET), ("DeleteBucketReplication", DR_BUCKET),
          ("PutBucketVersioning", DR_BUCKET.replace("us-east-1", "eu-west-1")),
          ("DeleteBucketPolicy", DR_ACCESS_LOGS))],
        [api_event("s3", "PutBucketPolicy", {"bucketName": BUCKET}),
         api_event("s3", "GetBucketPolicy", {"bucketName": DR_BUCKET}),
         api_event("s3", "PutBucketPolicy", {"bucketName": "scrybe-phi-audit-logs-123456789012-staging-us-east-1"}),
         api_event("s3", "PutBucketPolicy", {"bucketName": DR_BUCKET}, error_code="AccessDenied")],
    ),
    "AlarmPathTampered": (
        [api_event("monitoring", "DeleteAlarms", {"alarmNames": ["scrybe-phi-production-PhiKeyDisabled"]}),
         api_event("monitoring", "DisableAlarmActions", {"alarmNames": ["anything"]}),
         api_event("monitoring", "PutMetricAlarm", {"alarmName": "scrybe-phi-production-PhiKeyDisabled"}),
         api_event("logs", "DeleteMetricFilter", {"logGroupName": LOG_GROUP, "filterName": "x"}),
         api_event("logs", "DisassociateKmsKey", {"logGroupName": LOG_GROUP}),
         api_event("logs", "PutRetentionPolicy", {"logGroupName": LOG_GROUP, "retentionInDays": 1}),
         api_event("events", "DisableRule", {"name": RULE}),
         api_event("events", "RemoveTargets", {"rule": RULE, "ids": ["Topic0"]})],
        [api_event("monitoring", "PutMetricAlarm", {"alarmName": "unrelated"}),
         api_event("logs", "DeleteMetricFilter", {"logGroupName": "/other/group", "filterName": "x"}),
         # Auditors reading the logs, scanners describing the rule: read-only, never an alarm.
         api_event("logs", "FilterLogEvents", {"logGroupName": LOG_GROUP}),
         api_event("events", "DescribeRule", {"name": RULE}),
         api_event("events", "DisableRule", {"name": "other-rule"}),
         api_event("monitoring", "DeleteAlarms", {"alarmNames": ["x"]}, error_code="AccessDenied")],
    ),
    "AlarmDeliveryTampered": (
        [api_event("sns", "SetTopicAttributes", {"topicArn": TOPIC, "attributeName": "Policy"}),
         api_event("sns", "DeleteTopic", {"topicArn": TOPIC.replace("alarms", "watchdog")}),
         api_event("sns", "Unsubscribe", {"subscriptionArn": TOPIC + ":1234-abcd"}),
         api_event("sqs", "PurgeQueue", {"queueUrl": "https://sqs.us-west-2.amazonaws.com/123456789012/"
                                                  "scrybe-phi-audit-events-dlq-production"})],
        [api_event("sns", "SetTopicAttributes", {"topicArn": TOPIC + "-other", "attributeName": "Policy"}),
         api_event("sns", "GetTopicAttributes", {"topicArn": TOPIC}),
         api_event("sqs", "GetQueueAttributes", {"queueUrl": "https://sqs.us-west-2.amazonaws.com/123456789012/"
                                                          "scrybe-phi-audit-events-dlq-production"}),
         api_event("sns", "DeleteTopic", {"topicArn": TOPIC}, error_code="AuthorizationError")],
    ),
    "PhiKeyAccessDeniedBurst": (
        [kms_event("Decrypt", role_arn=APP.replace("app", "intruder"), error_code="AccessDenied"),
         kms_event("PutKeyPolicy", error_code="AccessDeniedException"),
         kms_event("Decrypt", REPLICA_KEY_ARN, error_code="AccessDenied")],
        [kms_event("Decrypt", role_arn=APP), kms_event("Decrypt", OTHER_KEY_ARN, error_code="AccessDenied"),
         kms_event("Decrypt", error_code="ThrottlingException")],
    ),
    # IAM is global: CloudTrail records it in us-east-1, and the multi-Region trail brings it home.
    "DrRolesChanged": (
        [api_event("iam", name, {"roleName": role}) for name, role in
         (("PutRolePolicy", "scrybe-phi-audit-replication-production"),
          ("DeleteRolePolicy", "scrybe-phi-audit-replication-production"),
          ("UpdateAssumeRolePolicy", "scrybe-phi-production-events-forward-us-east-1"),
          ("DeleteRole", "scrybe-phi-production-events-forward-eu-west-1"))],
        [api_event("iam", "GetRole", {"roleName": "scrybe-phi-audit-replication-production"}),
         api_event("iam", "PutRolePolicy", {"roleName": "scrybe-phi-audit-replication-staging"}),
         api_event("iam", "PutRolePolicy", {"roleName": "scrybe-phi-audit-replication-production"},
                   error_code="AccessDenied")],
    ),
    "EmergencyRoleUsed": (
        [kms_event("Decrypt", role_arn=EMERGENCY), assume_role_event(EMERGENCY),
         kms_event("ListBuckets", role_arn=EMERGENCY, source="s3.amazonaws.com"),
         kms_event("Decrypt", role_arn=EMERGENCY, error_code="AccessDenied")],
        [kms_event("Decrypt", role_arn=APP), assume_role_event(APP),
         kms_event("Decrypt", role_arn=EMERGENCY + "-other")],
    ),
}

#: What the templates' ${...} stand for in the samples.
BINDINGS = {"PhiKeyArn": KEY_ARN, "PhiKeyId": KEY_ARN.rsplit("/", 1)[1], "AuditKeyArn": AUDIT_KEY_ARN,
            "AWS::Partition": "aws", "AWS::Region": "us-west-2",
            "AWS::AccountId": "123456789012"}


def resolve_sub(value: Any) -> Any:
    """A pattern as CloudFormation would pass it to CloudWatch Logs, with the samples' ARNs."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        body = value["Fn::Sub"]
        text, variables = (body, {}) if isinstance(body, str) else body
        for name, bound in variables.items():
            assert bound in ({"Fn::GetAtt": ["PhiKey", "Arn"]}, {"Fn::GetAtt": ["AuditKey", "Arn"]},
                             {"Fn::ImportValue": "scrybe-kms-production-KmsKeyArn"},
                             {"Fn::ImportValue": "scrybe-kms-production-KmsKeyId"},
                             {"Fn::ImportValue": "scrybe-kms-production-AuditKeyArn"}), bound
            assert name in BINDINGS
        return re.sub(r"\$\{([^}]+)\}", lambda m: BINDINGS[m.group(1)], text)
    if isinstance(value, dict):
        return {k: resolve_sub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_sub(v) for v in value]
    return value


def rendered_patterns(*templates: dict[str, Any]) -> dict[str, str]:
    """Each filter's pattern, from both stacks, with the samples' ARNs bound."""
    found = {}
    for template in templates:
        for title, resource in resources_of_type(template, "AWS::Logs::MetricFilter").items():
            assert title.removesuffix("Filter") not in found, f"{title} is in both stacks"
            found[title.removesuffix("Filter")] = resolve_sub(resource["Properties"]["FilterPattern"])
    return found


@pytest.fixture(scope="module")
def production(templates: dict[str, dict[str, Any]], alarm_templates: dict[str, dict[str, Any]],
               filter_templates: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Every filter of production's stacks (all of them are in the filter stack)."""
    return rendered_patterns(templates["production"], filter_templates["production"], alarm_templates["production"])


def test_every_filter_has_cases(production: dict[str, str]) -> None:
    assert set(production) == set(CASES)


@pytest.mark.parametrize("title", sorted(CASES))
def test_filter_matches_what_it_must_and_nothing_else(production: dict[str, str], title: str) -> None:
    pattern = production[title]
    positive, negative = CASES[title]
    for event in positive:
        assert matches(pattern, event), (title, event["eventName"], event.get("requestParameters"))
    for event in negative:
        assert not matches(pattern, event), (title, event["eventName"], event.get("requestParameters"))


# The matcher itself, on the examples in AWS's filter pattern documentation.
DOC_EVENT = {
    "eventType": "UpdateTrail", "sourceIPAddress": "123.123.123.123", "arrayKey": ["value", "another"],
    "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
    "user": {"id": 1, "email": "John.Stiles@example.com"}, "users": [{"email": "John.Doe@example.com"}],
    "actions": ["GET", "PUT", "DELETE"], "coordinates": [[0, 1], [2, 3]], "nothing": None, "flag": True,
}


@pytest.mark.parametrize(("pattern", "expected"), [
    ('{ $.eventType = "UpdateTrail" }', True),
    ("{ $.sourceIPAddress != 123.123.* }", False),
    ('{ $.arrayKey[0] = "value" }', True),
    ("{ $.objectList[1].id = 2 }", True),
    ("{ $.objectList[1].id > 1 }", True),
    ("{ $.objectList[1].id < 2 }", False),
    ('{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', True),
    ('{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }', False),
    ('{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }',
     True),
    ("{ $.nothing IS NULL }", True),
    ("{ $.flag IS TRUE }", True),
    ("{ $.missing NOT EXISTS }", True),
    ("{ $.eventType NOT EXISTS }", False),
    ('{ $.missing = "x" }', False),
    ("{ $.eventType = Update* }", True),
])
def test_matcher_follows_the_documented_grammar(pattern: str, expected: bool) -> None:
    assert matches(pattern, DOC_EVENT) is expected


@pytest.mark.parametrize("pattern", ["$.a = 1", "{ $.a = }", "{ ($.a = 1 }", "{ a = 1 }", "{ $.a = 1 } x"])
def test_matcher_rejects_malformed_patterns(pattern: str) -> None:
    with pytest.raises(PatternError):
        matches(pattern, {"a": 1})


def test_wildcards_are_only_where_aws_documents_them(production: dict[str, str]) -> None:
    """CloudWatch Logs documents ``*`` at the start or the end of a value ("Ev*ent will only match
    the actual string Ev*ent"): the replica match (``*:<account>:key/<id>``) and the DR bucket names
    (``...-production-*``) use only those positions."""
    for title, pattern in production.items():
        for value in re.findall(r'"([^"]*)"', pattern):
            inner = value.strip("*")
            assert "*" not in inner, (title, value)
