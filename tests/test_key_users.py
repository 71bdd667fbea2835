"""Who may use the PHI key besides the application: roles through AWS services, auditors, AWS Backup,
the compliance tools, and the break-glass role in each MFA mode. Each statement is checked for the
exact actions and conditions AWS documents (docs/decisions.md D14-D19), written out here."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scrybe_kms.template import build_template
from tests.helpers import config, statements

ACCOUNT = {"Ref": "AWS::AccountId"}
DEPLOYER = "arn:aws:iam::123456789012:role/consumer-deployer"
AUDITOR = "arn:aws:iam::123456789012:role/auditor"
BACKUP = "arn:aws:iam::123456789012:role/service-role/AWSBackupDefaultServiceRole"
CRYPTO = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
GRANTS = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]


def endpoint(service: str) -> dict[str, str]:
    return {"Fn::Sub": service + ".${AWS::Region}.amazonaws.com"}


def key_policy(template: dict[str, Any], title: str = "PhiKey") -> dict[str, dict[str, Any]]:
    return statements(template["Resources"][title]["Properties"]["KeyPolicy"])


def rendered(**changes: Any) -> dict[str, Any]:
    return json.loads(build_template(config(**changes)).to_json())


def test_nothing_extra_by_default() -> None:
    """As the original: no service consumer, auditor or Backup statement unless configured."""
    sids = set(key_policy(rendered()))
    assert sids == {"KeyAdministratorsManageButNeverUse", "DenyPolicyLockoutSafetyCheckBypass",
                    "EmergencyAccessOnlyWithMfa", "ApplicationUsesKeyForCryptoOnly", "AwsConfigReadsKeyMetadata",
                    "AccessAnalyzerReadsKeyMetadata", "CloudTrailEncryptLogFiles", "CloudTrailDescribeKey"}
    assert "Condition" not in key_policy(rendered())["ApplicationUsesKeyForCryptoOnly"]


def test_a_service_consumer_uses_the_key_only_through_its_services() -> None:
    policy = key_policy(rendered(key_use_through_services=[
        {"role_arn": DEPLOYER, "services": ["s3", "rds", "dynamodb", "secretsmanager"]}]))
    use = policy["ConsumerDeployerUsesKeyOnlyThroughServices"]
    assert use["Principal"] == {"AWS": DEPLOYER}
    assert use["Action"] == CRYPTO
    assert use["Condition"] == {"StringEquals": {
        "kms:ViaService": [endpoint("dynamodb"), endpoint("rds"), endpoint("s3"), endpoint("secretsmanager")],
        "kms:CallerAccount": ACCOUNT}}


def test_grants_only_for_aws_resources_and_only_for_services_that_use_grants() -> None:
    policy = key_policy(rendered(key_use_through_services=[
        {"role_arn": DEPLOYER, "services": ["s3", "rds", "dynamodb", "secretsmanager"]}]))
    grants = policy["ConsumerDeployerGrantsOnlyForAwsResources"]
    assert grants["Action"] == GRANTS
    assert grants["Condition"] == {
        "Bool": {"kms:GrantIsForAWSResource": "true"},
        "StringEquals": {"kms:ViaService": [endpoint("dynamodb"), endpoint("rds")], "kms:CallerAccount": ACCOUNT},
    }
    no_grants = key_policy(rendered(key_use_through_services=[{"role_arn": DEPLOYER, "services": ["s3"]}]))
    assert "ConsumerDeployerGrantsOnlyForAwsResources" not in no_grants


def test_application_role_can_be_limited_to_named_services() -> None:
    policy = key_policy(rendered(application_role_only_via_services=["s3", "secretsmanager"]))
    assert "ApplicationUsesKeyForCryptoOnly" not in policy
    scoped = policy["ApplicationUsesKeyOnlyThroughServices"]
    assert scoped["Action"] == CRYPTO
    assert scoped["Condition"]["StringEquals"]["kms:ViaService"] == [endpoint("s3"), endpoint("secretsmanager")]


def test_auditors_decrypt_only_cloudtrail_logs_only_through_s3_and_read_only_the_bucket() -> None:
    template = rendered(audit_log_reader_role_arns=[AUDITOR])
    reader = key_policy(template)["AuditorsDecryptCloudTrailLogsOnlyThroughS3"]
    assert reader["Action"] == ["kms:Decrypt"]
    assert reader["Condition"] == {
        "Null": {"kms:EncryptionContext:aws:cloudtrail:arn": "false"},
        "StringEquals": {"kms:ViaService": [endpoint("s3")], "kms:CallerAccount": ACCOUNT}}
    # Nothing else on either key names the auditor.
    for title in ("PhiKey", "AuditKey"):
        named = [sid for sid, s in key_policy(template, title).items() if AUDITOR in json.dumps(s["Principal"])]
        assert named == (["AuditorsDecryptCloudTrailLogsOnlyThroughS3"] if title == "PhiKey" else [])
    bucket = statements(template["Resources"]["AuditLogBucketPolicy"]["Properties"]["PolicyDocument"])
    read = bucket["AuditorsReadAuditLogs"]
    assert read["Effect"] == "Allow" and read["Principal"] == {"AWS": AUDITOR}
    assert read["Action"] == ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetObject", "s3:GetObjectVersion"]


def test_audit_bucket_has_no_bucket_key_so_cloudtrails_context_reaches_kms() -> None:
    """With an S3 Bucket Key the encryption context is the bucket ARN, and the auditors'
    condition on aws:cloudtrail:arn could never match."""
    rule = rendered()["Resources"]["AuditLogBucket"]["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"][0]
    assert rule["BucketKeyEnabled"] is False


def test_backup_role_uses_the_key_only_through_backup() -> None:
    policy = key_policy(rendered(backup_role_arn=BACKUP))
    use, grants = policy["BackupRoleUsesKeyOnlyThroughBackup"], policy["BackupRoleUsesKeyOnlyThroughBackupGrants"]
    assert use["Principal"] == grants["Principal"] == {"AWS": BACKUP}
    through = [endpoint(s) for s in ("backup", "dynamodb", "ec2", "rds", "s3")]
    assert use["Condition"]["StringEquals"] == {"kms:ViaService": through, "kms:CallerAccount": ACCOUNT}
    assert grants["Action"] == GRANTS
    assert grants["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


@pytest.mark.parametrize("title", ["PhiKey", "AuditKey"])
def test_compliance_tools_read_metadata_and_nothing_more(title: str) -> None:
    policy = key_policy(rendered(), title)
    expected = {
        "AwsConfigReadsKeyMetadata": (
            "aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig",
            ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"]),
        "AccessAnalyzerReadsKeyMetadata": (
            "aws-service-role/access-analyzer.amazonaws.com/AWSServiceRoleForAccessAnalyzer",
            ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListGrants", "kms:ListKeyPolicies"]),
    }
    for sid, (path, actions) in expected.items():
        statement = policy[sid]
        # A missing service-linked role must not make PutKeyPolicy fail: it is named in a condition,
        # and the principal is the account (its IAM policy must allow the call too).
        assert statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
        assert statement["Action"] == actions
        assert statement["Condition"] == {
            "ArnEquals": {"aws:PrincipalArn": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/" + path}},
            "StringEquals": {"kms:CallerAccount": ACCOUNT}}
    off = key_policy(rendered(compliance_tools_read_key_metadata=False), title)
    assert not set(expected) & set(off)


@pytest.mark.parametrize("title", ["PhiKey", "AuditKey"])
def test_nobody_may_bypass_the_lockout_safety_check(title: str) -> None:
    deny = key_policy(rendered(), title)["DenyPolicyLockoutSafetyCheckBypass"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert deny["Action"] == ["kms:PutKeyPolicy"]
    assert deny["Condition"] == {"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}}


def test_break_glass_modes() -> None:
    session = key_policy(rendered())["EmergencyAccessOnlyWithMfa"]
    assert session["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    federated = key_policy(rendered(emergency_access_mfa="identity-provider"))
    assert "EmergencyAccessOnlyWithMfa" not in federated
    statement = federated["EmergencyAccessMfaEnforcedByIdentityProvider"]
    # AWS cannot see the IdP's MFA: no MFA condition that federated sessions could never meet.
    assert "Condition" not in statement
    assert statement["Principal"] == {"AWS": "arn:aws:iam::123456789012:role/breakglass"}
