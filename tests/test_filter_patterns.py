"""Every metric filter against CloudTrail events that must, and must not, match it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import resources_of_type
from tests.support.events import (
    KEY_ARN,
    OTHER_KEY_ARN,
    assume_role_event,
    direct_grant_event,
    kms_event,
    service_grant_event,
)
from tests.support.filter_pattern import PatternError, matches

EMERGENCY = "arn:aws:iam::123456789012:role/scrybe-emergency"
APP = "arn:aws:iam::123456789012:role/scrybe-production-app"

# filter title -> (events that must match, events that must not)
CASES: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {
    "KmsKeyDisabledOrDeletionScheduledCis47": (
        [kms_event("DisableKey"), kms_event("ScheduleKeyDeletion"), kms_event("DisableKey", OTHER_KEY_ARN)],
        [kms_event("EnableKey"), kms_event("CancelKeyDeletion"), kms_event("Decrypt"),
         kms_event("DisableKey", source="notkms.amazonaws.com")],
    ),
    "PhiKeyDisabled": (
        [kms_event("DisableKey")],
        [kms_event("DisableKey", OTHER_KEY_ARN), kms_event("EnableKey"), kms_event("ScheduleKeyDeletion")],
    ),
    "PhiKeyDeletionScheduled": (
        [kms_event("ScheduleKeyDeletion")],
        [kms_event("ScheduleKeyDeletion", OTHER_KEY_ARN), kms_event("CancelKeyDeletion"), kms_event("DisableKey")],
    ),
    "PhiKeyPolicyChanged": (
        [kms_event("PutKeyPolicy")],
        [kms_event("PutKeyPolicy", OTHER_KEY_ARN), kms_event("GetKeyPolicy")],
    ),
    "PhiKeyGrantCreated": (
        [kms_event("CreateGrant", role_arn=EMERGENCY), direct_grant_event()],
        [kms_event("CreateGrant", OTHER_KEY_ARN), kms_event("ListGrants"), kms_event("RevokeGrant"),
         # RDS, DynamoDB, EBS ... attaching the key: expected whenever a consumer stack deploys.
         service_grant_event(), service_grant_event(service="dynamodb.amazonaws.com")],
    ),
    "PhiKeyRotationDisabled": (
        [kms_event("DisableKeyRotation")],
        [kms_event("EnableKeyRotation"), kms_event("DisableKeyRotation", OTHER_KEY_ARN)],
    ),
    "PhiKeyAccessDeniedBurst": (
        [kms_event("Decrypt", role_arn=APP.replace("app", "intruder"), error_code="AccessDenied"),
         kms_event("PutKeyPolicy", error_code="AccessDeniedException")],
        [kms_event("Decrypt", role_arn=APP), kms_event("Decrypt", OTHER_KEY_ARN, error_code="AccessDenied"),
         kms_event("Decrypt", error_code="ThrottlingException")],
    ),
    "EmergencyRoleUsed": (
        [kms_event("Decrypt", role_arn=EMERGENCY), assume_role_event(EMERGENCY),
         kms_event("ListBuckets", role_arn=EMERGENCY, source="s3.amazonaws.com")],
        [kms_event("Decrypt", role_arn=APP), assume_role_event(APP),
         kms_event("Decrypt", role_arn=EMERGENCY + "-other")],
    ),
}


def rendered_patterns(template: dict[str, Any]) -> dict[str, str]:
    """Each filter's pattern with ${KeyArn} bound to the sample key's ARN."""
    found = {}
    for title, resource in resources_of_type(template, "AWS::Logs::MetricFilter").items():
        pattern = resource["Properties"]["FilterPattern"]
        if isinstance(pattern, dict):
            text, variables = pattern["Fn::Sub"]
            assert variables == {"KeyArn": {"Fn::GetAtt": ["PhiKey", "Arn"]}}
            pattern = text.replace("${KeyArn}", KEY_ARN)
        found[title.removesuffix("Filter")] = pattern
    return found


def test_every_filter_has_cases(templates: dict[str, dict[str, Any]]) -> None:
    assert set(rendered_patterns(templates["production"])) == set(CASES)


@pytest.mark.parametrize("title", sorted(CASES))
def test_filter_matches_what_it_must_and_nothing_else(templates: dict[str, dict[str, Any]], title: str) -> None:
    pattern = rendered_patterns(templates["production"])[title]
    positive, negative = CASES[title]
    for event in positive:
        assert matches(pattern, event), (title, event["eventName"])
    for event in negative:
        assert not matches(pattern, event), (title, event["eventName"], event["resources"])


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
