"""Who can do what: every cell of every key's access matrix, evaluated with
``scrybe_kms.derived.evaluator`` against the rendered key policy, compared to the answer written
down once here."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.derived.access import ACTIONS, access_markdown, evaluate, scenarios
from scrybe_kms.template import render_filters

ALL = frozenset(ACTIONS)
NONE: frozenset[str] = frozenset()
CRYPTO = frozenset({"kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
                    "kms:GenerateDataKeyWithoutPlaintext"})
ALIASES = frozenset({"kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"})
MANAGE = frozenset({"kms:CreateGrant", "kms:PutKeyPolicy", "kms:DisableKey", "kms:ScheduleKeyDeletion",
                    "kms:CancelKeyDeletion", "kms:DisableKeyRotation", "kms:TagResource"}) | ALIASES
APP = CRYPTO | {"kms:DescribeKey"}
ADMIN = (MANAGE - {"kms:CreateGrant"}) | {"kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus"}
GRANT = frozenset({"kms:CreateGrant"})
CONFIG = frozenset({"kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus"})
ANALYZER = frozenset({"kms:DescribeKey", "kms:GetKeyPolicy"})
#: Services that attach the key with grants (CreateGrant through them, for AWS resources only).
GRANT_SERVICES = {"dynamodb", "rds", "ebs", "backup", "lambda"}

#: The expected allowed actions per caller, per key. Labels ending in "*" stand for a family of rows
#: (every admin; every role through a named service).
EXPECTED: dict[str, dict[str, frozenset[str]]] = {
    "PhiKey": {
        "application role": APP,
        "admin role *": ADMIN,
        # Only into the configured DR regions (kms:ReplicaRegion, D47).
        "admin role *, replica in a DR region": ADMIN | {"kms:ReplicateKey"},
        "admin role *, replica in another region": ADMIN,
        # S3 decrypts source versions for replication, only for the audit bucket's objects (D48).
        "replication role through S3, an audit-bucket object": frozenset({"kms:Decrypt"}),
        "replication role, elsewhere": NONE,
        "emergency role with MFA": ALL,
        "emergency role without MFA": NONE,
        "* through grant service": APP | GRANT,
        "* through other service": APP,
        "* grant not for an AWS resource": APP,
        "* directly": NONE,
        "* reading a CloudTrail log file through S3": frozenset({"kms:Decrypt"}),
        "* through S3, not a CloudTrail log file": NONE,
        "* directly, CloudTrail context": NONE,
        "AWS Config (service-linked role)": CONFIG,
        "IAM Access Analyzer (service-linked role)": ANALYZER,
        "other role, same account (IAM kms:*)": NONE,
        "role in another account (IAM kms:*)": NONE,
        "anonymous": NONE,
        # No S3 Bucket Key on the audit bucket, so CloudTrail needs no Decrypt (D16).
        "CloudTrail, this trail": frozenset({"kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
                                             "kms:DescribeKey"}),
        "CloudTrail, another trail": NONE,
        "CloudWatch Logs, this log group": NONE,
        "CloudWatch Logs, another log group": NONE,
        "CloudWatch alarms (topic publish)": NONE,
        "EventBridge (topic publish)": NONE,
    },
    "AuditKey": {
        "application role": NONE,
        "admin role *": ADMIN,
        "admin role *, replica in a DR region": ADMIN,
        "admin role *, replica in another region": ADMIN,
        "replication role through S3, an audit-bucket object": NONE,
        "replication role, elsewhere": NONE,
        "emergency role with MFA": ALL,
        "emergency role without MFA": NONE,
        # Roles that use the PHI key through services, auditors and Backup get nothing on the audit key.
        "* through grant service": NONE,
        "* through other service": NONE,
        "* grant not for an AWS resource": NONE,
        "* directly": NONE,
        "* reading a CloudTrail log file through S3": NONE,
        "* through S3, not a CloudTrail log file": NONE,
        "* directly, CloudTrail context": NONE,
        "AWS Config (service-linked role)": CONFIG,
        "IAM Access Analyzer (service-linked role)": ANALYZER,
        "other role, same account (IAM kms:*)": NONE,
        "role in another account (IAM kms:*)": NONE,
        "anonymous": NONE,
        "CloudTrail, this trail": NONE,
        "CloudTrail, another trail": NONE,
        # AWS's documented statement conditions kms:Describe* on the encryption context, which
        # DescribeKey requests never carry: Logs gets crypto only.
        "CloudWatch Logs, this log group": CRYPTO,
        "CloudWatch Logs, another log group": NONE,
        # The alarm topics use no key (D26): nothing publishes through the audit key.
        "CloudWatch alarms (topic publish)": NONE,
        "EventBridge (topic publish)": NONE,
    },
}


def family(label: str) -> str:
    """The EXPECTED entry a row belongs to."""
    if label.startswith("admin role ") and ", replica in " in label:
        return "admin role *, replica in another region" if label.endswith("another region") \
            else "admin role *, replica in a DR region"
    if label.startswith("admin role "):
        return "admin role *"
    if label.startswith("replication role "):
        return ("replication role through S3, an audit-bucket object" if ", an object of " in label
                else "replication role, elsewhere")
    for suffix in ("grant not for an AWS resource", "reading a CloudTrail log file through S3",
                   "through S3, not a CloudTrail log file", "directly, CloudTrail context", "directly"):
        if label.endswith(suffix):
            return "* " + suffix
    if " through " in label:
        service = label.rsplit(" through ", 1)[1]
        return "* through grant service" if service in GRANT_SERVICES else "* through other service"
    return label


def expected_for(key: str, label: str) -> frozenset[str]:
    return EXPECTED[key][family(label)]


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_every_cell_matches(template: dict[str, Any], cfg: EnvironmentConfig, key: str) -> None:
    grid = evaluate(template, cfg, key)
    wrong = [f"{label} / {action}: {'allowed' if row[action] else 'denied'}"
             for label, row in grid.items() for action in ACTIONS
             if row[action] != (action in expected_for(key, label))]
    assert not wrong, "cells that differ from EXPECTED:\n" + "\n".join(wrong)
    emergency = {"emergency role with MFA", "emergency role without MFA"}
    assert bool(emergency & set(grid)) == bool(cfg.emergency_access_role_arn)
    assert len(grid) == len(scenarios(cfg)) >= 13


def test_the_matrices_cover_every_configured_caller(template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    """A row per service a consumer uses, a direct row per consumer, and the auditors, Backup and the
    compliance tools whenever the configuration has them."""
    labels = set(evaluate(template, cfg))
    for user in cfg.service_key_users:
        name = user.role_arn.rsplit("/", 1)[-1]
        assert {f"{name} through {s}" for s in user.services} | {f"{name} directly"} <= labels
    for arn in cfg.audit_log_reader_role_arns:
        assert f"{arn.rsplit('/', 1)[-1]} reading a CloudTrail log file through S3" in labels
    assert bool(cfg.backup_role_arn) == any(label.endswith(" through backup") for label in labels)
    assert {"AWS Config (service-linked role)", "IAM Access Analyzer (service-linked role)"} <= labels
    assert len(EXPECTED["PhiKey"]) == len(EXPECTED["AuditKey"])


def test_separation_of_duties(template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    """Only the MFA-gated emergency role can both manage and use the PHI key; no admin can grant;
    a grant is possible otherwise only as an AWS service makes it for a resource it manages."""
    grid = evaluate(template, cfg)
    contexts = {s.label: s.context for s in scenarios(cfg)}
    for label, row in grid.items():
        uses = any(row[a] for a in CRYPTO)
        manages = any(row[a] for a in MANAGE - GRANT)
        if uses and manages:
            assert label == "emergency role with MFA", label
        if row["kms:CreateGrant"] and label != "emergency role with MFA":
            assert contexts[label].get("kms:GrantIsForAWSResource") == "true", label
            assert contexts[label].get("kms:ViaService", "").split(".")[0] in {"rds", "dynamodb", "ec2", "backup",
                                                                               "lambda"}, label
        if label.startswith("admin role "):
            assert not row["kms:CreateGrant"], f"{label} could grant itself Decrypt"
            assert not uses


def test_evaluation_can_fail(template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    """The usual default statement (root kms:*) delegates to IAM: the evaluator must then let an
    over-privileged in-account role decrypt, and an explicit Deny must still win."""
    leaky = copy.deepcopy(template)
    statements = leaky["Resources"]["PhiKey"]["Properties"]["KeyPolicy"]["Statement"]
    statements.append({"Sid": "EnableIamUserPermissions", "Effect": "Allow",
                       "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
                       "Action": "kms:*", "Resource": "*"})
    grid = evaluate(leaky, cfg)
    assert grid["other role, same account (IAM kms:*)"]["kms:Decrypt"] is True
    assert grid["role in another account (IAM kms:*)"]["kms:Decrypt"] is False
    statements.append({"Sid": "DenyDecrypt", "Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt",
                       "Resource": "*"})
    grid = evaluate(leaky, cfg)
    assert grid["application role"]["kms:Decrypt"] is False
    assert grid["application role"]["kms:Encrypt"] is True


def test_matrix_file_shows_mfa_only(rendered: dict[str, str], configs: dict[str, EnvironmentConfig]) -> None:
    """Freshly evaluated from the rendered templates, not read from the committed out/."""
    text = access_markdown(rendered["production"], configs["production"])
    assert "| emergency role | " + " | ".join(["MFA only"] * len(ACTIONS)) + " |" in text
    assert "| application role | allow | allow | allow | allow | allow | allow | allow | deny |" in text
    dev = access_markdown(rendered["dev"], configs["dev"])
    assert "emergency" not in dev.split("Principals:")[0]


def test_federated_break_glass_row() -> None:
    """In identity-provider mode the emergency role is one row, allowed without an MFA key, because
    federated sessions never carry one (D17)."""
    from scrybe_kms.template import render
    from tests.helpers import config

    cfg = config(emergency_access_mfa="identity-provider")
    grid = evaluate(json.loads(render(cfg)), cfg)
    assert grid["emergency role (federated; MFA at the identity provider)"] == dict.fromkeys(ACTIONS, True)
    assert "emergency role with MFA" not in grid


def test_this_trail_and_log_group_come_from_the_rendered_template(template: dict[str, Any],
                                                                   cfg: EnvironmentConfig) -> None:
    """The key policy names the trail and the log group; the caller rows take their names from the
    trail and log group resources. If the two disagree, the matrix must show a deny."""
    renamed = copy.deepcopy(template)
    for resource in renamed["Resources"].values():
        if resource["Type"] == "AWS::CloudTrail::Trail":
            resource["Properties"]["TrailName"] += "-renamed"
        if resource["Type"] == "AWS::Logs::LogGroup":
            resource["Properties"]["LogGroupName"] += "-renamed"
    trail = next(r for r in renamed["Resources"].values() if r["Type"] == "AWS::CloudTrail::Trail")
    this_trail = {s.label: s for s in scenarios(cfg, renamed)}["CloudTrail, this trail"]
    assert this_trail.context["aws:SourceArn"] == (f"arn:{cfg.partition}:cloudtrail:{cfg.aws_region}:"
                                                   f"{cfg.account_id}:trail/{trail['Properties']['TrailName']}")
    assert not any(evaluate(renamed, cfg, "PhiKey")["CloudTrail, this trail"].values())
    assert not any(evaluate(renamed, cfg, "AuditKey")["CloudWatch Logs, this log group"].values())


def test_matrix_records_the_template_hash_and_explains_itself(
        rendered: dict[str, str], alarm_rendered: dict[str, str], configs: dict[str, EnvironmentConfig]) -> None:
    text = access_markdown(rendered["production"], configs["production"],
                           alarm_template=render_filters(configs["production"]))
    assert f"SHA-256 `{hashlib.sha256(rendered['production'].encode()).hexdigest()}`" in text
    assert "| MFA only | allowed only when the session has MFA" in text
    assert all(f"| {a.removeprefix('kms:')} | " in text for a in ACTIONS)
    notes = text.split("## Notes")[1].split("Principals:")[0]
    for phrase in ("lockout safety check", "scrybe-phi-production-PhiKeyPolicyChanged",
                   "scrybe-phi-production-EmergencyRoleUsed", "through a service: allow; directly: deny",
                   "Decrypt of CloudTrail log files through S3 only", "metadata only", "UpdateAlias"):
        assert phrase in notes, phrase
    trail_decrypts = evaluate(json.loads(rendered["production"]), configs["production"])["CloudTrail, this trail"]
    assert ("S3 Bucket Key" in notes) is trail_decrypts["kms:Decrypt"]
    assert text == access_markdown(json.loads(rendered["production"]), configs["production"],
                                   template_sha256=hashlib.sha256(rendered["production"].encode()).hexdigest(),
                                   alarm_template=json.loads(render_filters(configs["production"])))
