"""Every validation rule of EnvironmentConfig, with the message a person would see."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from scrybe_kms.config import ConfigError, EnvironmentConfig
from tests.helpers import VALID, config, settings

ROLE = "arn:aws:iam::123456789012:role/"

# (changes to VALID, the message part that must appear, naming field and value)
INVALID: list[tuple[dict[str, Any], str]] = [
    ({"environment": "prod"}, "'environment' must be one of dev, staging, production (got 'prod')"),
    ({"environment": "Production"}, "'environment' must be one of dev, staging, production (got 'Production')"),
    ({"environment": None}, "'environment' must be one of dev, staging, production (got None)"),
    ({"aws_region": "us-west-9"}, "'aws_region' must be an AWS region where KMS and CloudTrail run, "
                                  "such as 'us-west-2' (got 'us-west-9')"),
    ({"aws_region": "US-WEST-2"}, "'aws_region' must be an AWS region"),
    ({"aws_region": " us-west-2"}, "'aws_region' must be an AWS region such as 'us-west-2' without "
                                   "surrounding whitespace (got ' us-west-2')"),
    ({"application_role_arn": "arn:aws:iam::123456789012:user/bob"},
     "'application_role_arn' must be an IAM role ARN (arn:<partition>:iam::<12-digit account>:role/<name>); "
     "this is an IAM user ARN, not a role ARN (got 'arn:aws:iam::123456789012:user/bob')"),
    ({"application_role_arn": "arn:aws:sts::123456789012:assumed-role/app/session"},
     "this is an STS assumed-role session ARN; use the role's IAM ARN"),
    ({"application_role_arn": "arn:aws:iam::123456789012:root"}, "this is an account root ARN"),
    ({"application_role_arn": "arn:aws:iam::1234567890123:role/app"},
     "'application_role_arn' must be an IAM role ARN (arn:<partition>:iam::<12-digit account>:role/<name>) "
     "(got 'arn:aws:iam::1234567890123:role/app')"),
    ({"application_role_arn": "arn:aws:iam::12345678901:role/app"}, "(got 'arn:aws:iam::12345678901:role/app')"),
    ({"application_role_arn": "arn:aws:iam::١٢٣٤٥٦٧٨٩٠١٢:role/app"}, "'application_role_arn' must be an IAM role ARN"),
    ({"application_role_arn": ROLE + "app\n"}, "without surrounding whitespace"),
    ({"application_role_arn": 42}, "'application_role_arn' must be an IAM role ARN"),
    ({"admin_role_arns": []}, "'admin_role_arns' must be a non-empty list of IAM role ARNs (got [])"),
    ({"admin_role_arns": ROLE + "admin"}, "'admin_role_arns' must be a non-empty list of IAM role ARNs "
                                          "(got 'arn:aws:iam::123456789012:role/admin')"),
    ({"admin_role_arns": [ROLE + "a", "arn:aws:iam::123456789012:group/admins"]},
     "'admin_role_arns[1]' must be an IAM role ARN"),
    ({"admin_role_arns": [ROLE + "a", ROLE + "a"]},
     "'admin_role_arns[1]' duplicates an earlier entry (got 'arn:aws:iam::123456789012:role/a')"),
    ({"admin_role_arns": [ROLE + "app"]},
     "'admin_role_arns[0]' must not be the application role: the role that uses the key must not also "
     "manage it (got 'arn:aws:iam::123456789012:role/app')"),
    ({"admin_role_arns": [ROLE + "breakglass"]}, "'admin_role_arns[0]' must not be the emergency access role"),
    ({"emergency_access_role_arn": ROLE + "app"}, "'emergency_access_role_arn' must not be the application role"),
    ({"admin_role_arns": ["arn:aws:iam::210987654321:role/admin"]},
     "'admin_role_arns[0]' must be in the application role's account 123456789012, the account the key "
     "lives in (got 'arn:aws:iam::210987654321:role/admin')"),
    ({"application_role_arn": "arn:aws-us-gov:iam::123456789012:role/app",
      "admin_role_arns": ["arn:aws-us-gov:iam::123456789012:role/admin"],
      "emergency_access_role_arn": None},
     "'application_role_arn' must be in partition 'aws' of aws_region 'us-west-2'"),
    ({"emergency_access_role_arn": "arn:aws:iam::123456789012:user/alice"},
     "'emergency_access_role_arn' must be an IAM role ARN"),
    ({"deletion_window_days": 6}, "'deletion_window_days' must be an integer number of days between 7 and 30 (got 6)"),
    ({"deletion_window_days": 31}, "(got 31)"),
    ({"deletion_window_days": True}, "'deletion_window_days' must be an integer number of days between 7 and 30 "
                                     "(got True)"),
    ({"deletion_window_days": "30"}, "(got '30')"),
    ({"deletion_window_days": 30.0}, "(got 30.0)"),
    ({"audit_log_retention_days": 2000}, "'audit_log_retention_days' must be a CloudWatch Logs retention value "
                                         "of at least 2192 days"),
    ({"audit_log_retention_days": 365}, "(got 365)"),
    ({"alarm_emails": []}, "'alarm_emails' must name at least one address when 'alarm_topic_arn' is not set"),
    ({"alarm_emails": ["oncall@example"]}, "'alarm_emails[0]' must be an email address (got 'oncall@example')"),
    ({"alarm_emails": ["a@example.com", "A@example.com"]}, "'alarm_emails[1]' duplicates an earlier entry"),
    ({"alarm_emails": "oncall@example.com"}, "'alarm_emails' must be a list of email addresses"),
    ({"alarm_topic_arn": "arn:aws:sns:us-east-1:123456789012:alerts"},
     "'alarm_topic_arn' must be a topic in aws_region 'us-west-2'"),
    ({"alarm_topic_arn": "arn:aws:sqs:us-west-2:123456789012:alerts"}, "'alarm_topic_arn' must be an SNS topic ARN"),
    ({"alarm_topic_arn": "arn:aws:sns:us-west-2:210987654321:alerts"},
     "'alarm_topic_arn' must be in the application role's account 123456789012"),
    ({"additional_aliases": ["scrybe-legacy"]}, "'additional_aliases[0]' must be a KMS alias name"),
    ({"additional_aliases": ["alias/aws/s3"]}, "must not use the reserved 'alias/aws/' prefix"),
    ({"additional_aliases": ["alias/scrybe-phi-master-key-production"]},
     "'additional_aliases[0]' must not repeat the primary alias"),
    ({"additional_aliases": ["alias/x", "alias/x"]}, "'additional_aliases[1]' duplicates an earlier entry"),
]


@pytest.mark.parametrize(("changes", "message"), INVALID, ids=[str(c) for c, _ in INVALID])
def test_each_rule_reports_field_and_value(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config(**changes)
    assert any(message in problem for problem in info.value.problems), info.value.problems


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        config(environment="prod", aws_region="mars-1", deletion_window_days=0,
               admin_role_arns=[ROLE + "x", ROLE + "x"])
    assert len(info.value.problems) == 4
    text = str(info.value)
    assert text.startswith("invalid configuration (4 problems):\n  - ")
    for field in ("'environment'", "'aws_region'", "'deletion_window_days'", "'admin_role_arns[1]'"):
        assert field in text


def test_unknown_and_missing_fields_are_named() -> None:
    with pytest.raises(ConfigError) as info:
        EnvironmentConfig.from_mapping(settings(deletion_window=30, application_role_arn=...))
    problems = info.value.problems
    assert any(p.startswith("'deletion_window' is not a configuration field") and "(got 30)" in p
               for p in problems)
    assert "'application_role_arn' is required (got nothing)" in problems


def test_defaults_are_the_secure_ones() -> None:
    cfg = config(**{"deletion_window_days": ..., "audit_log_retention_days": ...})
    assert cfg.deletion_window_days == 30
    assert cfg.audit_log_retention_days == 2557  # 7 years, a CloudWatch Logs value
    assert cfg.emergency_access_role_arn == VALID["emergency_access_role_arn"]
    assert cfg.additional_aliases == ()


def test_config_is_immutable_and_normalised() -> None:
    cfg = config()
    assert isinstance(cfg.admin_role_arns, tuple)
    assert (cfg.account_id, cfg.partition) == ("123456789012", "aws")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.deletion_window_days = 7  # type: ignore[misc]


def test_other_partitions_are_accepted_when_consistent() -> None:
    cfg = config(aws_region="us-gov-west-1",
                 application_role_arn="arn:aws-us-gov:iam::123456789012:role/app",
                 admin_role_arns=["arn:aws-us-gov:iam::123456789012:role/admin"],
                 emergency_access_role_arn=None)
    assert cfg.partition == "aws-us-gov"


def test_topic_alone_is_an_alarm_destination() -> None:
    cfg = config(alarm_emails=[], alarm_topic_arn="arn:aws:sns:us-west-2:123456789012:security")
    assert cfg.alarm_topic_arn.endswith(":security")


def test_role_paths_are_valid_role_arns() -> None:
    assert config(application_role_arn=ROLE + "service/scrybe/app").application_role_arn.endswith("/app")


def test_known_regions_are_botocores() -> None:
    """The build reads botocore's endpoint data itself (importing botocore's session is most of a
    cold build); it must accept exactly the regions botocore's own resolver lists."""
    import botocore.session

    from scrybe_kms.config.validators import PARTITIONS, _regions

    session = botocore.session.get_session()
    expected = {name: partition for partition in PARTITIONS
                for name in set(session.get_available_regions("kms", partition))
                & set(session.get_available_regions("cloudtrail", partition))}
    assert _regions() == expected
    assert {"us-west-2", "eu-central-1", "cn-north-1", "us-gov-west-1"} <= set(expected)
