"""Audit-log replication to the disaster-recovery regions: the home stack's side.

The audit bucket replicates every log version to a bucket in each DR region, encrypted there with
that region's replica of the PHI key, through one least-privilege role (decision D48). S3 refuses a
replication rule whose destination bucket does not exist yet, and the destination's stack needs
the primary key's ARN, which exists only once this stack has been deployed; so each rule is
switched on by a parameter, ``ReplicateAuditLogsTo<Region>`` (``Disabled`` by default), set to
``Enabled`` once that region's stack is deployed (decision D49). The replication role and both
keys' statements for it exist from the first deploy.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Any

import awacs.kms as kms_actions
import awacs.s3 as s3_actions
import awacs.sts as sts_actions
from awacs.aws import (
    Action,
    Allow,
    ArnEquals,
    AWSPrincipal,
    Condition,
    PolicyDocument,
    Principal,
    Statement,
    StringEquals,
    StringLike,
)
from troposphere import Equals, If, Or, Parameter, Ref, Sub, Template, iam, s3

from scrybe_kms.config import EnvironmentConfig, naming
from scrybe_kms.config.services import via_service_endpoint
from scrybe_kms.template import condition_keys as keys
from scrybe_kms.template import policies
from scrybe_kms.template.bucket import BucketHandle
from scrybe_kms.template.context import context
from scrybe_kms.template.key import KeyHandle
from scrybe_kms.template.key_users import via_endpoints
from scrybe_kms.template.tags import standard_tags

__all__ = [
    "ENABLED",
    "REPLICATION_ROLE_TITLE",
    "add_replication",
    "allow_replica_encrypt",
    "allow_replication_decrypt",
    "allow_use_through_s3",
    "condition_title",
    "parameter_title",
    "replication_parameters",
    "replication_role_arn",
]

ENABLED, DISABLED = "Enabled", "Disabled"
#: "To receive replication failure event notifications ... you must enable S3 Replication metrics" (S3
#: guide, replication metrics and events): the rules enable them.
REPLICATION_FAILED = "s3:Replication:OperationFailedReplication"
REPLICATION_ROLE_TITLE = "AuditLogReplicationRole"
#: What S3 reads from the source bucket to replicate a version (S3 guide, replication permissions);
#: with Object Lock also its retention and legal hold, so the copy is locked as long (D48).
SOURCE_BUCKET_ACTIONS: tuple[Action, ...] = (s3_actions.GetReplicationConfiguration, s3_actions.ListBucket)
SOURCE_OBJECT_ACTIONS: tuple[Action, ...] = (s3_actions.GetObjectVersionForReplication,
                                             s3_actions.GetObjectVersionAcl, s3_actions.GetObjectVersionTagging)
LOCK_READ_ACTIONS: tuple[Action, ...] = (s3_actions.GetObjectRetention, s3_actions.GetObjectLegalHold)
#: What S3 writes to a destination bucket. ``ReplicateDelete`` replicates delete markers only, and
#: the rules here turn that off; S3 never replicates a version deletion.
DESTINATION_ACTIONS: tuple[Action, ...] = (s3_actions.ReplicateObject, s3_actions.ReplicateDelete,
                                           s3_actions.ReplicateTags)


def replication_parameters(cfg: EnvironmentConfig, ready: Collection[str]) -> dict[str, str]:
    """The key stack's parameter values: replicate to each DR region whose stack exists (``ready``)."""
    return {parameter_title(r): ENABLED if r in ready else DISABLED for r in cfg.disaster_recovery_regions}


def parameter_title(region: str) -> str:
    """``us-east-1`` -> ``ReplicateAuditLogsToUsEast1``."""
    return "ReplicateAuditLogsTo" + "".join(w.capitalize() for w in re.split(r"[^a-z0-9]+", region))


def condition_title(region: str) -> str:
    return parameter_title(region).replace("ReplicateAuditLogsTo", "ReplicatingAuditLogsTo")


def replication_role_arn(cfg: EnvironmentConfig) -> str:
    """Literal, like every role a key policy names (the template's Rules pin the account)."""
    return f"arn:{cfg.partition}:iam::{cfg.account_id}:role/{naming.replication_role_name(cfg.environment)}"


def _s3_context(bucket_name_sub: str) -> StringLike:
    """S3's encryption context without an S3 Bucket Key: the object's ARN (D48)."""
    return StringLike(keys.S3_CONTEXT, Sub(naming.bucket_arn_sub(bucket_name_sub) + "/*"))


def _through_s3(account: Any) -> StringEquals:
    return StringEquals({keys.VIA_SERVICE: via_endpoints(["s3"])[0], keys.CALLER_ACCOUNT: account})


def allow_use_through_s3(sid: str, role_arns: Sequence[Any], action: Action, bucket_name_sub: str) -> Statement:
    """``action`` on the key only in requests S3 makes in this stack's region for this account, and
    only for objects of one bucket (the encryption context, D48)."""
    return policies.statement(Allow, sid, policies.role_principal(list(role_arns)), [action], ["*"],
                              policies.conditions(_through_s3(Ref("AWS::AccountId")), _s3_context(bucket_name_sub)))


def _replication_role_uses(sid: str, role_arn: str, action: Action, bucket_name_sub: str) -> Statement:
    """The replication role, named by ``aws:PrincipalArn`` on the account principal rather than as the
    principal: a key policy stores a named role as its unique ID, so a role recreated with the same
    name (a retired and adopted key stack) would lose access to the replicas in other regions, whose
    policies nothing re-applies; and the policy deploys before the role exists (D48, as D15)."""
    return policies.statement(
        Allow, sid, AWSPrincipal(Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")), [action], ["*"],
        policies.conditions(ArnEquals(keys.PRINCIPAL_ARN, role_arn), _through_s3(Ref("AWS::AccountId")),
                            _s3_context(bucket_name_sub)))


def allow_replication_decrypt(role_arn: str, bucket_name_sub: str) -> Statement:
    """The primary key: the replication role decrypts source versions (the S3 guide's statement)."""
    return _replication_role_uses("ReplicationRoleDecryptsAuditLogsOnlyThroughS3", role_arn, kms_actions.Decrypt,
                                  bucket_name_sub)


def allow_replica_encrypt(role_arn: str, bucket_name_sub: str) -> Statement:
    """A replica key: the replication role encrypts the copies in that region's audit bucket."""
    return _replication_role_uses("ReplicationRoleEncryptsAuditLogCopiesOnlyThroughS3", role_arn,
                                  kms_actions.Encrypt, bucket_name_sub)


def _grant(sid: str, actions: Sequence[Action], resources: Sequence[Any],
           condition: Condition | None = None) -> Statement:
    """An identity-policy statement (no principal)."""
    extra = {} if condition is None else {"Condition": condition}
    return Statement(Sid=sid, Effect=Allow, Action=list(actions), Resource=list(resources), **extra)


def _role_policy(cfg: EnvironmentConfig, phi: KeyHandle) -> PolicyDocument:
    env = cfg.environment
    source_arn = naming.bucket_arn_sub(naming.audit_bucket_name_sub(env))
    locked = cfg.audit_log_object_lock is not None
    statements = [
        # The source by name, not GetAtt: the bucket waits for this policy (see add_replication).
        _grant("ReadReplicationConfiguration", SOURCE_BUCKET_ACTIONS, [Sub(source_arn)]),
        _grant("ReadAuditLogVersions", [*SOURCE_OBJECT_ACTIONS, *(LOCK_READ_ACTIONS if locked else ())],
               [Sub(source_arn + "/*")]),
        _grant("WriteCopiesToDrBuckets", DESTINATION_ACTIONS,
               [Sub(naming.bucket_arn_sub(naming.dr_audit_bucket_name_sub(env, r)) + "/*")
                for r in cfg.disaster_recovery_regions]),
        _grant("DecryptSourceOnlyThroughS3", [kms_actions.Decrypt], [phi.arn],
               policies.conditions(StringLike(keys.VIA_SERVICE, via_endpoints(["s3"])[0]),
                                   _s3_context(naming.audit_bucket_name_sub(env)))),
    ]
    statements += [_grant("EncryptCopiesIn" + parameter_title(region).removeprefix("ReplicateAuditLogsTo"),
                          [kms_actions.Encrypt], [Sub(naming.replica_key_arn_sub(region), PhiKey=phi.key_id)],
                          policies.conditions(StringLike(keys.VIA_SERVICE, via_service_endpoint("s3", region)),
                                              _s3_context(naming.dr_audit_bucket_name_sub(env, region))))
                   for region in cfg.disaster_recovery_regions]
    return policies.policy_document(statements)


def _rule(cfg: EnvironmentConfig, region: str, priority: int, phi: KeyHandle) -> s3.ReplicationConfigurationRules:
    env = cfg.environment
    return s3.ReplicationConfigurationRules(
        Id=parameter_title(region).removeprefix("Replicate"), Priority=priority, Status="Enabled",
        Filter=s3.ReplicationRuleFilter(Prefix=""),
        # Not replicated (D48): a delete marker someone adds here must not hide the DR copy; S3
        # never replicates the markers lifecycle adds, and each DR bucket expires on its own rules.
        DeleteMarkerReplication=s3.DeleteMarkerReplication(Status="Disabled"),
        SourceSelectionCriteria=s3.SourceSelectionCriteria(
            SseKmsEncryptedObjects=s3.SseKmsEncryptedObjects(Status="Enabled")),
        Destination=s3.ReplicationConfigurationRulesDestination(
            Bucket=Sub(naming.bucket_arn_sub(naming.dr_audit_bucket_name_sub(env, region))),
            EncryptionConfiguration=s3.EncryptionConfiguration(
                ReplicaKmsKeyID=Sub(naming.replica_key_arn_sub(region), PhiKey=phi.key_id)),
            Metrics=s3.Metrics(Status="Enabled"),
        ),
    )


def add_replication(template: Template, cfg: EnvironmentConfig, phi: KeyHandle, source: BucketHandle) -> iam.Role:
    """Parameters and conditions per DR region, the replication role, its grant on the PHI key and
    the audit bucket's replication rules."""
    regions: Sequence[str] = cfg.disaster_recovery_regions
    for region in regions:
        template.add_parameter(Parameter(
            parameter_title(region), Type="String", AllowedValues=[ENABLED, DISABLED], Default=DISABLED,
            Description=f"{ENABLED} once {naming.replica_stack_name(cfg.environment, region)} is deployed in "
                        f"{region}: S3 refuses a replication rule whose destination bucket does not exist."))
        template.add_condition(condition_title(region), Equals(Ref(parameter_title(region)), ENABLED))
    any_region = condition_title(regions[0])
    if len(regions) > 1:
        any_region = "ReplicatingAuditLogs"
        template.add_condition(any_region, Or(*({"Condition": condition_title(r)} for r in regions)))

    role = template.add_resource(iam.Role(
        REPLICATION_ROLE_TITLE,
        RoleName=naming.replication_role_name(cfg.environment),
        AssumeRolePolicyDocument=policies.policy_document([Statement(
            Sid="S3ReplicatesAuditLogs", Effect=Allow, Principal=Principal("Service", "s3.amazonaws.com"),
            Action=[sts_actions.AssumeRole])]),
        Tags=standard_tags(cfg.environment),
        Metadata=context("S3 assumes it to copy audit-log versions to the DR buckets; its policy is the "
                         "ReplicationRolePolicy resource."),
    ))
    role_policy = template.add_resource(iam.PolicyType(
        "AuditLogReplicationRolePolicy",
        PolicyName="replicate-audit-logs",
        Roles=[Ref(role)],
        PolicyDocument=_role_policy(cfg, phi),
    ))
    phi.add_statement(allow_replication_decrypt(replication_role_arn(cfg),
                                                naming.audit_bucket_name_sub(cfg.environment)))
    bucket = source.resource
    # A version that failed to replicate is not tried again: S3 reports it to the alarm topic (which
    # the alarm stack, deployed before replication is switched on, lets S3 publish to).
    topic = Sub(naming.alarm_topic_arn_sub(cfg.environment))
    bucket.NotificationConfiguration = If(any_region, s3.NotificationConfiguration(TopicConfigurations=[
        s3.TopicConfigurations(Event=REPLICATION_FAILED, Topic=topic)]), Ref("AWS::NoValue"))
    # The role's policy first: S3 does not retry a version that failed to replicate.
    bucket.DependsOn = [*bucket.DependsOn, role_policy.title]
    bucket.ReplicationConfiguration = If(any_region, s3.ReplicationConfiguration(
        # By its fixed name, not GetAtt: a retained bucket can then be adopted without the role, which
        # the following update recreates (D40).
        Role=replication_role_arn(cfg),
        # One region: the outer condition is that region's; more: each rule is switched on by its own.
        Rules=[_rule(cfg, regions[0], 0, phi)] if len(regions) == 1 else
              [If(condition_title(r), _rule(cfg, r, i, phi), Ref("AWS::NoValue")) for i, r in enumerate(regions)],
    ), Ref("AWS::NoValue"))
    return role
