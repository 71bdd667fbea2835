"""Key-policy statements, one builder per kind of principal, each with its documented conditions.

The account root is never in a key policy here (decision D1), so IAM policies cannot grant use of
the key: every principal that must use it is named in one of these statements, scoped as tightly
as AWS documents for its use. Each builder checks its own input (``'field' must be ...``), so a
consumer calling it directly gets the same protection as a stack file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import awacs.kms as kms
from awacs.aws import (
    Action,
    Allow,
    ArnEquals,
    AWSPrincipal,
    Bool,
    Deny,
    Null,
    Principal,
    Statement,
    StringEquals,
)
from troposphere import Sub

from scrybe_kms.config import ConfigError
from scrybe_kms.config.rules import EMERGENCY_MFA_MODES
from scrybe_kms.template import condition_keys as keys
from scrybe_kms.template import guards
from scrybe_kms.template.policies import conditions, role_principal, statement

__all__ = [
    "ACCESS_ANALYZER_READ_ACTIONS",
    "APPLICATION_CRYPTO_ACTIONS",
    "AWS_RESOURCE_GRANT_ACTIONS",
    "BACKUP_ACTIONS",
    "CONFIG_READ_ACTIONS",
    "EMERGENCY_MFA_MODES",
    "KEY_ADMIN_ACTIONS",
    "LOG_READER_ACTIONS",
    "EmergencyMfa",
    "allow_aws_resource_grants",
    "allow_compliance_reader",
    "allow_emergency_access",
    "allow_key_administration",
    "allow_key_use",
    "allow_log_readers",
    "allow_replication_to_regions",
    "deny_lockout_bypass",
]

#: How the break-glass role proves a second factor (decision D17):
#: ``session``: the session carries ``aws:MultiFactorAuthPresent`` (IAM users with MFA calling
#: AssumeRole with a token code). ``identity-provider``: sessions from AssumeRoleWithSAML /
#: AssumeRoleWithWebIdentity (IAM Identity Center, SAML and OIDC IdPs), for which "AWS cannot
#: determine whether that provider required MFA": the identity provider enforces MFA, the key
#: policy names the role alone, and every use raises the EmergencyRoleUsed alarm.
EmergencyMfa = Literal["session", "identity-provider"]

#: What the application role may do, exactly as the original: use the key, never manage it.
APPLICATION_CRYPTO_ACTIONS: tuple[Action, ...] = (
    kms.Encrypt,
    kms.Decrypt,
    kms.Action("ReEncrypt*"),
    kms.Action("GenerateDataKey*"),
    kms.DescribeKey,
)

#: Key management, spelled out. No wildcard: ``kms:Create*`` would include ``CreateGrant`` and
#: ``kms:Put*``/``kms:*`` more, either of which lets an admin give itself Decrypt (decision D2).
#: ``PutKeyPolicy`` stays: KMS's lockout safety check requires the deployer to keep it; the
#: residual risk is alarmed on (``PhiKeyPolicyChanged``). Alias operations stay: CloudFormation
#: creates the aliases with the deployer's credentials; the application is given the key ARN,
#: never the alias, so retargeting an alias cannot redirect PHI (decision D12).
KEY_ADMIN_ACTIONS: tuple[Action, ...] = (
    kms.CancelKeyDeletion,
    kms.CreateAlias,
    kms.DeleteAlias,
    kms.DescribeKey,
    kms.DisableKey,
    kms.DisableKeyRotation,
    kms.EnableKey,
    kms.EnableKeyRotation,
    kms.GetKeyPolicy,
    kms.GetKeyRotationStatus,
    kms.ListGrants,
    kms.ListKeyPolicies,
    kms.ListKeyRotations,
    kms.ListResourceTags,
    kms.PutKeyPolicy,
    kms.RevokeGrant,
    kms.RotateKeyOnDemand,
    kms.ScheduleKeyDeletion,
    kms.TagResource,
    kms.UntagResource,
    kms.UpdateAlias,
    kms.UpdateKeyDescription,
)

#: Grants an AWS service creates, lists and retires to keep the key attached to a resource it
#: manages (RDS, EBS, DynamoDB ...), only with ``kms:GrantIsForAWSResource`` (decision D14).
AWS_RESOURCE_GRANT_ACTIONS: tuple[Action, ...] = (kms.CreateGrant, kms.ListGrants, kms.RevokeGrant)

#: What AWS Config's service-linked role policy (AWSConfigServiceRolePolicy) allows on keys: the
#: rotation and key-state rules behind Security Hub KMS.4 read these (decision D15).
CONFIG_READ_ACTIONS: tuple[Action, ...] = (
    kms.DescribeKey,
    kms.GetKeyPolicy,
    kms.GetKeyRotationStatus,
    kms.ListResourceTags,
)
#: What IAM Access Analyzer reads on a key ("the key policy and list of grants"), as its
#: AccessAnalyzerServiceRolePolicy allows (decision D15).
ACCESS_ANALYZER_READ_ACTIONS: tuple[Action, ...] = (
    kms.DescribeKey,
    kms.GetKeyPolicy,
    kms.ListGrants,
    kms.ListKeyPolicies,
)

#: Auditors reading CloudTrail's log files: Decrypt only, under CloudTrail's context (decision D16).
LOG_READER_ACTIONS: tuple[Action, ...] = (kms.Decrypt,)

#: AWS Backup's role: what it needs to copy and restore encrypted resources through Backup (D18).
BACKUP_ACTIONS: tuple[Action, ...] = (
    kms.Decrypt,
    kms.Encrypt,
    kms.Action("ReEncrypt*"),
    kms.Action("GenerateDataKey*"),
    kms.DescribeKey,
)


def _roles(field: str, arns: Sequence[str]) -> AWSPrincipal:
    [checked] = guards.checked(field, (guards.ROLES, field, arns))
    return role_principal(checked)


def _via(endpoints: Sequence[Any], account: Any) -> list[Any]:
    """``kms:ViaService`` (any of ``endpoints``) and ``kms:CallerAccount`` (this account), merged
    into one ``StringEquals``: two operators of one kind would keep only the last."""
    return [StringEquals({keys.VIA_SERVICE: list(endpoints), keys.CALLER_ACCOUNT: account})]


def allow_key_use(sid: str, role_arns: Sequence[str], *, via_services: Sequence[Any] = (),
                  account: Any = None) -> Statement:
    """Cryptographic use of the key and nothing else; with ``via_services`` (endpoints such as
    ``rds.us-west-2.amazonaws.com``), only in requests those services make for the role."""
    if via_services and account is None:
        raise ConfigError(["'account' must be given with 'via_services' (got None)"], sid)
    condition = conditions(*_via(via_services, account)) if via_services else None
    return statement(Allow, sid, _roles("role_arns", role_arns), APPLICATION_CRYPTO_ACTIONS, ["*"], condition)


def allow_aws_resource_grants(sid: str, role_arns: Sequence[str], *, via_services: Sequence[Any],
                              account: Any) -> Statement:
    """CreateGrant, ListGrants and RevokeGrant, only for grants an AWS service makes for a
    resource it manages, and only through ``via_services``: the role can attach the key to an
    RDS cluster but cannot hand Decrypt to a person."""
    return statement(Allow, sid, _roles("role_arns", role_arns), AWS_RESOURCE_GRANT_ACTIONS, ["*"],
                     conditions(Bool(keys.GRANT_IS_FOR_AWS_RESOURCE, "true"), *_via(via_services, account)))


def allow_key_administration(sid: str, role_arns: Sequence[str]) -> Statement:
    """Administrators manage the key's life and policy but can neither use it nor grant use."""
    return statement(Allow, sid, _roles("admin_role_arns", role_arns), KEY_ADMIN_ACTIONS, ["*"], None)


def allow_emergency_access(role_arn: str, mfa: EmergencyMfa = "session") -> Statement:
    """Break glass: every KMS action, only for a session whose second factor is proven.

    ``Bool`` / ``Null`` in an Allow (never ``...IfExists``): a session without the key must not
    match. See :data:`EmergencyMfa` for which sign-in each mode serves.
    """
    if mfa not in EMERGENCY_MFA_MODES:
        raise ConfigError([f"'emergency_mfa' must be one of {', '.join(EMERGENCY_MFA_MODES)} "
                                  f"(got {mfa!r})"], "allow_emergency_access")
    role = _roles("emergency_role_arn", [role_arn])
    if mfa == "identity-provider":
        return statement(Allow, "EmergencyAccessMfaEnforcedByIdentityProvider", role, [kms.Action("*")], ["*"], None)
    return statement(Allow, "EmergencyAccessOnlyWithMfa", role, [kms.Action("*")], ["*"],
                     conditions(Bool(keys.MFA_PRESENT, "true")))


def allow_compliance_reader(sid: str, role_arn: Any, actions: Sequence[Action], account: Any) -> Statement:
    """A compliance tool's service-linked role reads key metadata. That role exists only once the
    tool is enabled, and naming a missing role makes ``PutKeyPolicy`` fail ("invalid principals"),
    so the principal is this account, narrowed by ``aws:PrincipalArn`` to that one role (ARNs in
    conditions are not resolved or checked) and ``kms:CallerAccount`` (decision D15). The role's own
    managed IAM policy must allow the call too, as it does; no other identity in the account can be
    granted anything by this statement."""
    return statement(Allow, sid, AWSPrincipal(Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")), actions,
                     ["*"], conditions(ArnEquals(keys.PRINCIPAL_ARN, role_arn),
                                       StringEquals(keys.CALLER_ACCOUNT, account)))


def allow_log_readers(sid: str, role_arns: Sequence[str], *, s3_endpoint: Any, account: Any) -> Statement:
    """Auditors decrypt CloudTrail's log files, only under CloudTrail's encryption context (the
    statement CloudTrail documents for log readers) and only through S3 (decision D16)."""
    return statement(Allow, sid, _roles("audit_log_reader_role_arns", role_arns), LOG_READER_ACTIONS, ["*"],
                     conditions(Null(keys.CLOUDTRAIL_CONTEXT, "false"), *_via([s3_endpoint], account)))


def allow_backup(sid: str, role_arn: str, *, via_services: Sequence[Any], account: Any) -> list[Statement]:
    """AWS Backup's role: use through Backup and the services it copies resources through, and
    grants for the resources it copies (D18)."""
    role = _roles("backup_role_arn", [role_arn])
    return [
        statement(Allow, sid, role, BACKUP_ACTIONS, ["*"], conditions(*_via(via_services, account))),
        statement(Allow, f"{sid}Grants", role, AWS_RESOURCE_GRANT_ACTIONS, ["*"],
                  conditions(Bool(keys.GRANT_IS_FOR_AWS_RESOURCE, "true"), *_via(via_services, account))),
    ]


def allow_replication_to_regions(sid: str, role_arns: Sequence[str], regions: Sequence[str]) -> Statement:
    """Administrators (the deployer) may replicate a multi-Region key only into the configured DR
    regions (``kms:ReplicaRegion``, the KMS guide's example). Whoever calls ReplicateKey writes the
    replica's key policy, so a replica elsewhere would be a copy of the key under any policy (D47)."""
    if isinstance(regions, (str, bytes)) or not isinstance(regions, (list, tuple)) or not regions:
        raise ConfigError([f"'regions' must be a non-empty list of AWS regions (got {regions!r})"], sid)
    return statement(Allow, sid, _roles("admin_role_arns", role_arns), [kms.ReplicateKey], ["*"],
                     conditions(StringEquals(keys.REPLICA_REGION, list(regions))))


def deny_lockout_bypass(sid: str = "DenyPolicyLockoutSafetyCheckBypass") -> Statement:
    """Nobody, admin or break-glass, may replace the policy with the lockout safety check turned
    off: that is how a key is bricked (decision D19)."""
    return statement(Deny, sid, Principal("AWS", "*"), [kms.PutKeyPolicy], ["*"],
                     conditions(Bool(keys.BYPASS_LOCKOUT_SAFETY_CHECK, "true")))
