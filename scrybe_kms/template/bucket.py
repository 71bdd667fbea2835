"""S3 buckets for the audit trail: the log bucket (SSE-KMS with the PHI key) and the bucket that
receives its server access logs (SSE-S3, the only encryption S3 log delivery supports).

Both are private, owner-enforced, TLS-only, versioned and retained when the stack goes away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import awacs.s3 as s3_actions
from awacs.aws import Allow, ArnLike, Deny, PolicyDocument, Principal, Statement, StringEquals
from troposphere import GetAtt, Ref, Sub, Template, s3

from scrybe_kms.template import condition_keys as keys
from scrybe_kms.template import guards, policies, retention
from scrybe_kms.template.context import context
from scrybe_kms.template.key import KeyHandle
from scrybe_kms.template.tags import standard_tags

__all__ = ["BucketHandle", "access_log_bucket", "audit_log_bucket"]

ACCESS_LOG_PREFIX = "audit-logs-bucket/"
#: What an auditor needs to read the logs: list the bucket and its versions, read any version.
READ_ACTIONS = (s3_actions.ListBucket, s3_actions.ListBucketVersions, s3_actions.GetObject,
                s3_actions.GetObjectVersion)


@dataclass(frozen=True)
class BucketHandle:
    """A bucket and its policy document, which other builders extend with their statements."""

    resource: s3.Bucket
    policy: PolicyDocument
    policy_resource: s3.BucketPolicy

    @property
    def name(self) -> Ref:
        return Ref(self.resource)

    @property
    def arn(self) -> GetAtt:
        return GetAtt(self.resource, "Arn")

    def objects(self, prefix: str = "") -> Sub:
        """ARN pattern for objects under ``prefix`` (which may use ``${AWS::...}`` variables)."""
        return Sub("${" + self.resource.title + ".Arn}/" + prefix + "*")

    def add_statement(self, *statements: Statement) -> None:
        policies.append_statements(self.policy, self.resource.title, statements)

    def allow_readers(self, sid: str, role_arns: Sequence[str]) -> None:
        """List the bucket and read every object version; nothing else (auditors, decision D16)."""
        [roles] = guards.checked(f"{self.resource.title}.allow_readers", (guards.ROLES, "role_arns", role_arns))
        self.add_statement(policies.statement(
            Allow, sid, policies.role_principal(roles), READ_ACTIONS,
            [self.arn, self.objects()], None))


def _private_bucket(title: str, name: Any, environment: str, encryption: s3.BucketEncryption,
                    lifecycle: s3.LifecycleConfiguration, metadata: dict[str, Any],
                    **extra: Any) -> s3.Bucket:
    return s3.Bucket(
        title,
        BucketName=name,
        BucketEncryption=encryption,
        VersioningConfiguration=s3.VersioningConfiguration(Status="Enabled"),
        PublicAccessBlockConfiguration=s3.PublicAccessBlockConfiguration(
            BlockPublicAcls=True,
            BlockPublicPolicy=True,
            IgnorePublicAcls=True,
            RestrictPublicBuckets=True,
        ),
        OwnershipControls=s3.OwnershipControls(
            Rules=[s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]
        ),
        LifecycleConfiguration=lifecycle,
        Tags=standard_tags(environment),
        Metadata=metadata,
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
        **extra,
    )


def _with_policy(template: Template, bucket: s3.Bucket) -> BucketHandle:
    """The bucket's policy resource, empty until builders add their statements."""
    policy = policies.policy_document([])
    policy_resource = template.add_resource(
        # Retained with the bucket: deleting the stack must not strip TLS-only and the
        # version-deletion deny from a bucket that outlives it.
        s3.BucketPolicy(f"{bucket.title}Policy", Bucket=Ref(bucket), PolicyDocument=policy,
                        DeletionPolicy="Retain", UpdateReplacePolicy="Retain")
    )
    return BucketHandle(bucket, policy, policy_resource)


def access_log_bucket(template: Template, *, environment: str, name: Any, retention_days: int,
                      title: str = "AuditLogAccessLogBucket") -> BucketHandle:
    """Receives S3 server access logs of the audit bucket; SSE-S3 because S3 requires it."""
    bucket = template.add_resource(_private_bucket(
        title, name, environment,
        s3.BucketEncryption(ServerSideEncryptionConfiguration=[
            s3.ServerSideEncryptionRule(
                ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(SSEAlgorithm="AES256"),
            )
        ]),
        # No Object Lock: S3 cannot deliver server access logs to a bucket that has it.
        retention.lifecycle(retention_days, locked=False, archive=False),
        context("Receives the audit bucket's S3 server access logs (CIS 3.4, CloudTrail.7).",
                must=["SSE-S3: S3 delivers server access logs only to SSE-S3 buckets"],
                checkov={"skip": [
                    {"id": "CKV_AWS_18", "comment": "This bucket is the access-log destination; logging "
                                                    "it into itself would loop."},
                ]}),
    ))
    handle = _with_policy(template, bucket)
    handle.add_statement(policies.deny_insecure_transport([handle.arn, handle.objects()]))
    return handle


def audit_log_bucket(template: Template, *, environment: str, name: Any, key: KeyHandle,
                     access_logs: BucketHandle, retention_days: int, object_lock: str | None = "compliance",
                     title: str = "AuditLogBucket") -> BucketHandle:
    """The trail's log bucket: SSE-KMS with the PHI key, every version kept ``retention_days``
    (locked for that long with ``object_lock``, decision D29) and deleted soon after, large files
    archived as they age, with server access logging."""
    lock = {} if object_lock is None else {
        "ObjectLockEnabled": True, "ObjectLockConfiguration": retention.object_lock(object_lock, retention_days)}
    bucket = template.add_resource(_private_bucket(
        title, name, environment,
        s3.BucketEncryption(ServerSideEncryptionConfiguration=[
            s3.ServerSideEncryptionRule(
                ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(
                    SSEAlgorithm="aws:kms", KMSMasterKeyID=key.arn),
                # No S3 Bucket Key: with one, the encryption context is the bucket ARN, and the
                # auditors' Decrypt condition on CloudTrail's context could never match (D16).
                BucketKeyEnabled=False,
            )
        ]),
        retention.lifecycle(retention_days, locked=object_lock is not None, archive=True),
        context("Holds the CloudTrail log files for the retention period (HIPAA audit evidence).",
                must=["encrypted with the PHI key, as the original", "never public",
                      "no log version expires before the retention period",
                      "Object Lock is chosen at creation; the deploy command refuses to add it later"]),
        LoggingConfiguration=s3.LoggingConfiguration(
            DestinationBucketName=access_logs.name, LogFilePrefix=ACCESS_LOG_PREFIX),
        DependsOn=[access_logs.policy_resource.title],
        **lock,
    ))
    handle = _with_policy(template, bucket)
    # S3 log delivery writes the access logs; scope it to this bucket and account. The ARN is
    # built from the name: GetAtt would make the two buckets depend on each other.
    access_logs.add_statement(policies.allow_service(
        "S3ServerAccessLogDelivery", "logging.s3.amazonaws.com", [s3_actions.PutObject],
        [access_logs.objects(ACCESS_LOG_PREFIX)],
        ArnLike(keys.SOURCE_ARN, Sub("arn:${AWS::Partition}:s3:::${BucketName}", BucketName=name)),
        StringEquals(keys.SOURCE_ACCOUNT, Ref("AWS::AccountId")),
    ))
    handle.add_statement(
        policies.deny_insecure_transport([handle.arn, handle.objects()]),
        # Audit evidence: nobody, whatever their IAM rights, permanently deletes a log version.
        # Lifecycle expiry still works; removing this statement first is itself a logged event.
        Statement(Sid="DenyAuditLogVersionDeletion", Effect=Deny, Principal=Principal("*"),
                  Action=[s3_actions.DeleteObjectVersion], Resource=[handle.objects()]),
    )
    return handle
