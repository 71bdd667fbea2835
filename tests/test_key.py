"""The PHI key, its aliases and its policy, read from the rendered templates."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest
from awacs.aws import StringEquals, StringLike

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.template import key_statements, policies
from tests.helpers import resources_of_type, statements

TRAIL_ARN = {"Fn::Sub": "arn:${AWS::Partition}:cloudtrail:${AWS::Region}:${AWS::AccountId}:trail/"
                        "scrybe-phi-audit-trail-production"}
ADMIN_ACTIONS = [
    "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey", "kms:DisableKey",
    "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation", "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus", "kms:ListGrants", "kms:ListKeyPolicies", "kms:ListKeyRotations",
    "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:RevokeGrant", "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource", "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
]

ACCOUNT = {"Ref": "AWS::AccountId"}
ROOT = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
CRYPTO_USE = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
DEPLOYER = "arn:aws:iam::123456789012:role/scrybe-production-stack-deployer"
BACKUP = "arn:aws:iam::123456789012:role/service-role/AWSBackupDefaultServiceRole"


def via(*services: str) -> list[dict[str, str]]:
    return [{"Fn::Sub": f"{s}.${{AWS::Region}}.amazonaws.com"} for s in services]


def slr(path: str) -> dict[str, str]:
    return {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/" + path}


#: The production PHI key policy, statement by statement, as it must be.
PRODUCTION_PHI_POLICY: list[dict[str, Any]] = [
    {"Sid": "KeyAdministratorsManageButNeverUse", "Effect": "Allow",
     "Principal": {"AWS": ["arn:aws:iam::123456789012:role/scrybe-admin",
                           "arn:aws:iam::123456789012:role/security-team"]},
     "Action": ADMIN_ACTIONS, "Resource": ["*"]},
    {"Sid": "DenyPolicyLockoutSafetyCheckBypass", "Effect": "Deny", "Principal": {"AWS": "*"},
     "Action": ["kms:PutKeyPolicy"], "Resource": ["*"],
     "Condition": {"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}}},
    {"Sid": "EmergencyAccessOnlyWithMfa", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::123456789012:role/scrybe-emergency"},
     "Action": ["kms:*"], "Resource": ["*"],
     "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}},
    {"Sid": "ApplicationUsesKeyForCryptoOnly", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::123456789012:role/scrybe-production-app"},
     "Action": CRYPTO_USE, "Resource": ["*"]},
    {"Sid": "ScrybeProductionStackDeployerUsesKeyOnlyThroughServices", "Effect": "Allow",
     "Principal": {"AWS": DEPLOYER}, "Action": CRYPTO_USE, "Resource": ["*"],
     "Condition": {"StringEquals": {"kms:ViaService": via("dynamodb", "rds", "s3", "secretsmanager"),
                                    "kms:CallerAccount": ACCOUNT}}},
    {"Sid": "ScrybeProductionStackDeployerGrantsOnlyForAwsResources", "Effect": "Allow",
     "Principal": {"AWS": DEPLOYER}, "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
     "Resource": ["*"],
     "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"},
                   "StringEquals": {"kms:ViaService": via("dynamodb", "rds"), "kms:CallerAccount": ACCOUNT}}},
    {"Sid": "AuditorsDecryptCloudTrailLogsOnlyThroughS3", "Effect": "Allow",
     "Principal": {"AWS": "arn:aws:iam::123456789012:role/scrybe-security-auditor"},
     "Action": ["kms:Decrypt"], "Resource": ["*"],
     "Condition": {"Null": {"kms:EncryptionContext:aws:cloudtrail:arn": "false"},
                   "StringEquals": {"kms:ViaService": via("s3"), "kms:CallerAccount": ACCOUNT}}},
    {"Sid": "BackupRoleUsesKeyOnlyThroughBackup", "Effect": "Allow", "Principal": {"AWS": BACKUP},
     "Action": ["kms:Decrypt", "kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
     "Resource": ["*"],
     "Condition": {"StringEquals": {"kms:ViaService": via("backup", "dynamodb", "ec2", "rds", "s3"),
                                    "kms:CallerAccount": ACCOUNT}}},
    {"Sid": "BackupRoleUsesKeyOnlyThroughBackupGrants", "Effect": "Allow", "Principal": {"AWS": BACKUP},
     "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], "Resource": ["*"],
     "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"},
                   "StringEquals": {"kms:ViaService": via("backup", "dynamodb", "ec2", "rds", "s3"),
                                    "kms:CallerAccount": ACCOUNT}}},
    # Only into the DR region (kms:ReplicaRegion): whoever replicates writes the replica's policy (D47).
    {"Sid": "KeyAdministratorsReplicateOnlyToDrRegions", "Effect": "Allow",
     "Principal": {"AWS": ["arn:aws:iam::123456789012:role/scrybe-admin",
                           "arn:aws:iam::123456789012:role/security-team"]},
     "Action": ["kms:ReplicateKey"], "Resource": ["*"],
     "Condition": {"StringEquals": {"kms:ReplicaRegion": ["us-east-1"]}}},
    {"Sid": "AwsConfigReadsKeyMetadata", "Effect": "Allow", "Principal": {"AWS": ROOT},
     "Action": ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"],
     "Resource": ["*"],
     "Condition": {"ArnEquals": {"aws:PrincipalArn": slr("config.amazonaws.com/AWSServiceRoleForConfig")},
                   "StringEquals": {"kms:CallerAccount": ACCOUNT}}},
    {"Sid": "AccessAnalyzerReadsKeyMetadata", "Effect": "Allow", "Principal": {"AWS": ROOT},
     "Action": ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListGrants", "kms:ListKeyPolicies"],
     "Resource": ["*"],
     "Condition": {"ArnEquals": {"aws:PrincipalArn": slr(
         "access-analyzer.amazonaws.com/AWSServiceRoleForAccessAnalyzer")},
                   "StringEquals": {"kms:CallerAccount": ACCOUNT}}},
    # S3's replication of SSE-KMS objects (the S3 guide's statement): through S3 here, audit bucket only (D48).
    {"Sid": "ReplicationRoleDecryptsAuditLogsOnlyThroughS3", "Effect": "Allow", "Principal": {"AWS": ROOT},
     "Action": ["kms:Decrypt"], "Resource": ["*"],
     "Condition": {"ArnEquals": {"aws:PrincipalArn":
                                 "arn:aws:iam::123456789012:role/scrybe-phi-audit-replication-production"},
                   "StringEquals": {"kms:CallerAccount": ACCOUNT,
                                    "kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}},
                   "StringLike": {"kms:EncryptionContext:aws:s3:arn": {
                       "Fn::Sub": "arn:${AWS::Partition}:s3:::scrybe-phi-audit-logs-${AWS::AccountId}-production/*"}}}},
    {"Sid": "CloudTrailEncryptLogFiles", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
     "Action": ["kms:GenerateDataKey*"], "Resource": ["*"],
     "Condition": {
         "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn":
                        {"Fn::Sub": "arn:${AWS::Partition}:cloudtrail:*:${AWS::AccountId}:trail/*"}},
         "StringEquals": {"aws:SourceArn": TRAIL_ARN}}},
    {"Sid": "CloudTrailDescribeKey", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
     "Action": ["kms:DescribeKey"], "Resource": ["*"],
     "Condition": {"StringEquals": {"aws:SourceArn": TRAIL_ARN}}},
]


def key_policy(template: dict[str, Any], title: str = "PhiKey") -> dict[str, Any]:
    return template["Resources"][title]["Properties"]["KeyPolicy"]


def test_production_phi_key_policy_is_exactly_this(templates: dict[str, dict[str, Any]]) -> None:
    policy = key_policy(templates["production"])
    assert policy["Version"] == "2012-10-17"
    assert policy["Statement"] == PRODUCTION_PHI_POLICY


def test_key_properties(template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    key = template["Resources"]["PhiKey"]
    props = key["Properties"]
    assert props["EnableKeyRotation"] is True
    assert props["PendingWindowInDays"] == cfg.deletion_window_days
    # Multi-Region exactly when the configuration names DR regions (production: us-east-1).
    assert (props["KeySpec"], props["KeyUsage"], props["MultiRegion"]) == (
        "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", bool(cfg.disaster_recovery_regions))
    assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("Retain", "Retain")
    tags = {t["Key"]: t["Value"] for t in props["Tags"]}
    assert tags["Environment"] == cfg.environment
    assert tags["DataClassification"] == "PHI"
    assert tags["Compliance"] == "HIPAA"


def test_no_key_ever_bypasses_the_lockout_check(template: dict[str, Any]) -> None:
    for key in resources_of_type(template, "AWS::KMS::Key").values():
        assert "BypassPolicyLockoutSafetyCheck" not in key["Properties"]


@pytest.mark.parametrize("title", ["PhiKey", "AuditKey"])
def test_every_admin_keeps_put_key_policy_so_the_lockout_check_passes(
        template: dict[str, Any], cfg: EnvironmentConfig, title: str) -> None:
    """KMS refuses a policy that would not let the deployer (an admin role) update it later."""
    admin = statements(key_policy(template, title))["KeyAdministratorsManageButNeverUse"]
    principals = admin["Principal"]["AWS"]
    principals = [principals] if isinstance(principals, str) else principals
    assert principals == list(cfg.admin_role_arns)
    assert "kms:PutKeyPolicy" in admin["Action"]
    assert "Condition" not in admin


def test_admins_get_no_crypto_and_no_way_to_grant_it() -> None:
    admin = set(policies.action_names(key_statements.KEY_ADMIN_ACTIONS))
    crypto = set(policies.action_names(policies.CRYPTO_ACTIONS))
    assert not admin & crypto
    assert "kms:CreateGrant" not in admin
    assert not [a for a in admin if "*" in a], "a wildcard could hide CreateGrant or crypto"


#: The only statements naming the account, and the condition keys that narrow each to one role.
ACCOUNT_PRINCIPAL = {"AwsConfigReadsKeyMetadata": {"aws:PrincipalArn", "kms:CallerAccount"},
                     "AccessAnalyzerReadsKeyMetadata": {"aws:PrincipalArn", "kms:CallerAccount"},
                     # Decrypt only through S3 and only the audit bucket's objects (D48).
                     "ReplicationRoleDecryptsAuditLogsOnlyThroughS3": {
                         "aws:PrincipalArn", "kms:CallerAccount", "kms:ViaService",
                         "kms:EncryptionContext:aws:s3:arn"}}


def test_no_account_root_or_anonymous_allow(template: dict[str, Any]) -> None:
    """Only named principals: no Allow to '*', and the account only in the compliance readers'
    statements, each narrowed by aws:PrincipalArn to one service-linked role (D1, D15), with no
    action that touches data or grants."""
    for title in ("PhiKey", "AuditKey"):
        for statement in key_policy(template, title)["Statement"]:
            principal = statement["Principal"]
            assert principal != "*"
            arns = [principal["AWS"]] if isinstance(principal.get("AWS"), (str, dict)) else principal.get("AWS", [])
            if statement["Effect"] == "Deny":
                continue
            if arns == [ROOT]:
                keys = {k for block in statement["Condition"].values() for k in block}
                assert keys == ACCOUNT_PRINCIPAL[statement["Sid"]], statement["Sid"]
                allowed = {"kms:Decrypt"} if statement["Sid"].startswith("ReplicationRole") else set()
                assert not set(statement["Action"]) - allowed & {"kms:Decrypt", "kms:Encrypt", "kms:CreateGrant",
                                                                 "kms:*"}
                continue
            for arn in arns:
                assert isinstance(arn, str) and ":role/" in arn and not arn.endswith(":root"), arn


def test_only_the_app_and_mfa_emergency_role_use_the_phi_key_directly(template: dict[str, Any],
                                                             cfg: EnvironmentConfig) -> None:
    """Every human/app principal with a crypto action on the PHI key is the app, or MFA-gated."""
    crypto = set(policies.action_names(policies.CRYPTO_ACTIONS))
    for statement in key_policy(template)["Statement"]:
        aws = statement["Principal"].get("AWS")
        if aws is None:
            continue
        grants_crypto = any(fnmatch.fnmatchcase(c, a) for a in statement["Action"] for c in crypto)
        if not grants_crypto:
            continue
        if statement["Effect"] == "Deny":
            continue
        if aws == cfg.application_role_arn:
            assert "Condition" not in statement
        elif aws == cfg.emergency_access_role_arn:
            assert statement["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
        else:
            # Everyone else uses the key only inside requests an AWS service makes for them in this
            # account, or (auditors) only to decrypt CloudTrail's log files through S3.
            equals = statement["Condition"]["StringEquals"]
            assert set(equals) == {"kms:ViaService", "kms:CallerAccount"}, statement["Sid"]
            assert equals["kms:CallerAccount"] == {"Ref": "AWS::AccountId"}


def test_dev_has_no_emergency_statement(templates: dict[str, dict[str, Any]]) -> None:
    assert "EmergencyAccessOnlyWithMfa" not in statements(key_policy(templates["dev"]))


def test_primary_alias_points_at_the_phi_key(template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    aliases = {a["Properties"]["AliasName"]: a for a in resources_of_type(template, "AWS::KMS::Alias").values()}
    assert aliases[f"alias/scrybe-phi-master-key-{cfg.environment}"]["Properties"]["TargetKeyId"] == {"Ref": "PhiKey"}
    assert aliases[f"alias/scrybe-phi-audit-key-{cfg.environment}"]["Properties"]["TargetKeyId"] == {"Ref": "AuditKey"}
    assert all(a["DeletionPolicy"] == "Retain" for a in aliases.values())


def test_additional_aliases_are_created() -> None:
    import json

    from scrybe_kms.template import render
    from tests.helpers import config

    template = json.loads(render(config(additional_aliases=["alias/scrybe-phi-legacy"])))
    alias = template["Resources"]["PhiKeyAliasScrybePhiLegacy"]["Properties"]
    assert alias == {"AliasName": "alias/scrybe-phi-legacy", "TargetKeyId": {"Ref": "PhiKey"}}


def test_conditions_merge_same_operator_instead_of_dropping() -> None:
    merged = policies.conditions(StringEquals("a", "1"), StringLike("c", "x*"), StringEquals("b", "2"))
    assert merged.JSONrepr() == {"StringEquals": {"a": "1", "b": "2"}, "StringLike": {"c": "x*"}}
    with pytest.raises(ValueError, match="condition key 'a' given twice under StringEquals"):
        policies.conditions(StringEquals("a", "1"), StringEquals("a", "2"))
