"""Malformed configurations through the real build command: each gives exit status 2, exactly one
problem naming the field and the value, no traceback, and leaves every file in out/ as it was."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from scrybe_kms import cli
from tests.helpers import OUT, STACKS

PROD = {
    "environment": "production",
    "aws_region": "us-west-2",
    "application_role_arn": "arn:aws:iam::123456789012:role/scrybe-production-app",
    "admin_role_arns": ["arn:aws:iam::123456789012:role/scrybe-admin",
                        "arn:aws:iam::123456789012:role/security-team"],
    "emergency_access_role_arn": "arn:aws:iam::123456789012:role/scrybe-emergency",
    "deletion_window_days": 30,
    "alarm_emails": ["security-oncall@scrybe.example"],
}
APP = PROD["application_role_arn"]
DEPLOYER = "arn:aws:iam::123456789012:role/scrybe-production-stack-deployer"
AUDITOR = "arn:aws:iam::123456789012:role/scrybe-security-auditor"
ADMIN = PROD["admin_role_arns"][0]
DROP = object()

# (case id, field to change, new value, the field name the message must name)
CASES: list[tuple[str, str, Any, str]] = [
    ("env-unknown", "environment", "prod", "environment"),
    ("env-wrong-type", "environment", 7, "environment"),
    ("env-trailing-space", "environment", "production ", "environment"),
    ("region-unknown", "aws_region", "us-west-9", "aws_region"),
    ("region-empty", "aws_region", "", "aws_region"),
    ("region-unicode-hyphen", "aws_region", "us\u2010west\u20102", "aws_region"),
    ("region-uppercase", "aws_region", "US-WEST-2", "aws_region"),
    ("app-user-arn", "application_role_arn", "arn:aws:iam::123456789012:user/scrybe-production-app",
     "application_role_arn"),
    ("app-11-digit-account", "application_role_arn", "arn:aws:iam::12345678901:role/app", "application_role_arn"),
    ("app-13-digit-account", "application_role_arn", "arn:aws:iam::1234567890123:role/app", "application_role_arn"),
    ("app-fullwidth-digits", "application_role_arn", "arn:aws:iam::\uff11\uff12\uff13456789012:role/app",
     "application_role_arn"),
    ("app-zero-width-space", "application_role_arn", "arn:aws:iam::123456789012:role/\u200bapp",
     "application_role_arn"),
    ("app-cyrillic-a", "application_role_arn", "\u0430rn:aws:iam::123456789012:role/app", "application_role_arn"),
    ("app-nbsp", "application_role_arn", APP + "\u00a0", "application_role_arn"),
    ("app-none", "application_role_arn", None, "application_role_arn"),
    ("app-session-arn", "application_role_arn", "arn:aws:sts::123456789012:assumed-role/app/s1",
     "application_role_arn"),
    ("app-root", "application_role_arn", "arn:aws:iam::123456789012:root", "application_role_arn"),
    ("app-empty-name", "application_role_arn", "arn:aws:iam::123456789012:role/", "application_role_arn"),
    ("app-china-partition", "application_role_arn", "arn:aws-cn:iam::123456789012:role/app",
     "application_role_arn"),
    ("app-missing", "application_role_arn", DROP, "application_role_arn"),
    ("admins-empty", "admin_role_arns", [], "admin_role_arns"),
    ("admins-string", "admin_role_arns", ADMIN, "admin_role_arns"),
    ("admins-none", "admin_role_arns", None, "admin_role_arns"),
    ("admins-group", "admin_role_arns", [ADMIN, "arn:aws:iam::123456789012:group/admins"], "admin_role_arns[1]"),
    ("admins-duplicate", "admin_role_arns", [ADMIN, ADMIN], "admin_role_arns[1]"),
    ("admins-app-role", "admin_role_arns", [ADMIN, APP], "admin_role_arns[1]"),
    ("admins-other-account", "admin_role_arns", [ADMIN, "arn:aws:iam::210987654321:role/x"], "admin_role_arns[1]"),
    ("emergency-user", "emergency_access_role_arn", "arn:aws:iam::123456789012:user/alice",
     "emergency_access_role_arn"),
    ("emergency-is-app", "emergency_access_role_arn", APP, "emergency_access_role_arn"),
    ("emergency-is-admin", "emergency_access_role_arn", ADMIN, "admin_role_arns[0]"),
    ("window-6", "deletion_window_days", 6, "deletion_window_days"),
    ("window-31", "deletion_window_days", 31, "deletion_window_days"),
    ("window-negative", "deletion_window_days", -1, "deletion_window_days"),
    ("window-true", "deletion_window_days", True, "deletion_window_days"),
    ("window-string", "deletion_window_days", "30", "deletion_window_days"),
    ("window-float", "deletion_window_days", 7.5, "deletion_window_days"),
    ("retention-1-year", "audit_log_retention_days", 365, "audit_log_retention_days"),
    ("retention-not-a-cwl-value", "audit_log_retention_days", 2556, "audit_log_retention_days"),
    ("emails-empty", "alarm_emails", [], "alarm_emails"),
    ("emails-bad", "alarm_emails", ["security-oncall"], "alarm_emails[0]"),
    ("emails-duplicate-case", "alarm_emails", ["ops@scrybe.example", "OPS@scrybe.example"], "alarm_emails[1]"),
    ("topic-other-region", "alarm_topic_arn", "arn:aws:sns:eu-west-1:123456789012:alerts", "alarm_topic_arn"),
    ("topic-is-queue", "alarm_topic_arn", "arn:aws:sqs:us-west-2:123456789012:alerts", "alarm_topic_arn"),
    ("alias-reserved", "additional_aliases", ["alias/aws/kms"], "additional_aliases[0]"),
    ("alias-string", "additional_aliases", "alias/legacy", "additional_aliases"),
    ("unknown-key", "deletion_window", 30, "deletion_window"),
    # Service access, auditors, Backup, break-glass mode, compliance readers.
    ("service-unknown", "key_use_through_services", [{"role_arn": DEPLOYER, "services": ["rds", "glacier"]}],
     "key_use_through_services[0].services[1]"),
    ("service-logs", "key_use_through_services", [{"role_arn": DEPLOYER, "services": ["logs"]}],
     "key_use_through_services[0].services[0]"),
    ("service-list-is-string", "key_use_through_services", [{"role_arn": DEPLOYER, "services": "rds"}],
     "key_use_through_services[0].services"),
    ("service-duplicated", "key_use_through_services", [{"role_arn": DEPLOYER, "services": ["rds", "rds"]}],
     "key_use_through_services[0].services[1]"),
    ("service-entry-missing-services", "key_use_through_services", [{"role_arn": DEPLOYER}],
     "key_use_through_services[0]"),
    ("service-role-other-account", "key_use_through_services",
     [{"role_arn": "arn:aws:iam::210987654321:role/deployer", "services": ["rds"]}],
     "key_use_through_services[0].role_arn"),
    ("service-role-is-user", "key_use_through_services",
     [{"role_arn": "arn:aws:iam::123456789012:user/deployer", "services": ["rds"]}],
     "key_use_through_services[0].role_arn"),
    ("service-consumer-twice", "key_use_through_services",
     [{"role_arn": DEPLOYER, "services": ["rds"]}, {"role_arn": DEPLOYER, "services": ["s3"]}],
     "key_use_through_services[1].role_arn"),
    ("service-consumer-is-admin", "key_use_through_services", [{"role_arn": ADMIN, "services": ["rds"]}],
     "key_use_through_services[0].role_arn"),
    ("app-only-via-unknown", "application_role_only_via_services", ["s3", "ftp"],
     "application_role_only_via_services[1]"),
    ("auditor-is-app", "audit_log_reader_role_arns", [APP], "audit_log_reader_role_arns[0]"),
    ("auditor-is-admin", "audit_log_reader_role_arns", [ADMIN], "audit_log_reader_role_arns[0]"),
    ("auditor-is-emergency", "audit_log_reader_role_arns", [PROD["emergency_access_role_arn"]],
     "audit_log_reader_role_arns[0]"),
    ("auditors-string", "audit_log_reader_role_arns", AUDITOR, "audit_log_reader_role_arns"),
    ("backup-not-a-role", "backup_role_arn", "arn:aws:iam::123456789012:user/backup", "backup_role_arn"),
    ("backup-other-account", "backup_role_arn", "arn:aws:iam::210987654321:role/backup", "backup_role_arn"),
    ("emergency-mfa-unknown", "emergency_access_mfa", "sms", "emergency_access_mfa"),
    ("compliance-flag-string", "compliance_tools_read_key_metadata", "yes", "compliance_tools_read_key_metadata"),
    ("object-lock-mode-unknown", "audit_log_object_lock", "legal-hold", "audit_log_object_lock"),
    ("object-lock-mode-uppercase", "audit_log_object_lock", "COMPLIANCE", "audit_log_object_lock"),
    ("dr-is-home-region", "disaster_recovery_regions", ["us-west-2"], "disaster_recovery_regions[0]"),
    ("dr-unknown-region", "disaster_recovery_regions", ["us-east-1", "us-east-9"], "disaster_recovery_regions[1]"),
    ("dr-duplicate-region", "disaster_recovery_regions", ["us-east-1", "us-east-1"], "disaster_recovery_regions[1]"),
    ("dr-other-partition", "disaster_recovery_regions", ["us-gov-west-1"], "disaster_recovery_regions[0]"),
    ("dr-bare-string", "disaster_recovery_regions", "us-east-1", "disaster_recovery_regions"),
]


def received(settings: dict[str, Any], named: str) -> Any:
    """The value the message must quote: ``field``, ``field[1]`` or ``field[0].role_arn[2]``."""
    value: Any = settings
    for part in re.findall(r"[A-Za-z_]+|\[\d+\]", named):
        value = value[int(part[1:-1])] if part.startswith("[") else value[part]
    return value


def snapshot(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def out_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("out")
    shutil.copytree(OUT, target, dirs_exist_ok=True)
    return target


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(("field", "value", "named"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_error_and_writes_nothing(
        tmp_path: Path, out_copy: Path, capsys: pytest.CaptureFixture[str], field: str, value: Any, named: str) -> None:
    settings = dict(PROD)
    if value is DROP:
        del settings[field]
    else:
        settings[field] = value
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "production.py").write_text(f"SETTINGS = {settings!r}\n", encoding="utf-8")
    before = snapshot(out_copy)

    status = cli.main(["build", "--env", "production", "--stacks", str(stacks), "--out", str(out_copy)])

    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    problems = [line for line in captured.err.splitlines() if line.startswith("  - ")]
    assert len(problems) == 1, captured.err
    assert f"'{named}'" in problems[0]
    assert ("(got nothing)" if value is DROP else f"(got {received(settings, named)!r})") in problems[0]
    assert "Traceback" not in captured.err
    assert snapshot(out_copy) == before


def test_the_valid_settings_above_do_build(tmp_path: Path) -> None:
    """The table's base settings are valid, so each case fails for its own change only."""
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    shutil.copy(STACKS / "production.py", stacks / "production.py")
    (stacks / "production.py").write_text(f"SETTINGS = {PROD!r}\n", encoding="utf-8")
    assert cli.main(["build", "--env", "production", "--stacks", str(stacks), "--out", str(tmp_path / "o")]) == 0
