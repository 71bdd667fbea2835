"""The CloudTrail trail that records every use and management of the key.

The trail adds its own statements to the PHI key policy and the log bucket policy, each scoped
with ``aws:SourceArn`` to this trail's ARN (built from its fixed name, so no cycle forms), and
delivers a copy to a CloudWatch Logs group for the metric filters. That log group is encrypted
with the *audit* key, not the PHI key: disabling the PHI key must not blind the alarms that
report it (decision D5).
"""

from __future__ import annotations

from dataclasses import dataclass

import awacs.logs as logs_actions
import awacs.s3 as s3_actions
import awacs.sts as sts_actions
from awacs.aws import Allow, ArnEquals, Principal, Statement, StringEquals, StringLike
from troposphere import GetAtt, Sub, Template, cloudtrail, iam, logs

from scrybe_kms.config import naming
from scrybe_kms.template import condition_keys as keys
from scrybe_kms.template import policies
from scrybe_kms.template.bucket import BucketHandle
from scrybe_kms.template.context import context
from scrybe_kms.template.key import KeyHandle
from scrybe_kms.template.tags import standard_tags

__all__ = ["TrailHandle", "audit_trail", "trail_log_group"]


@dataclass(frozen=True)
class TrailHandle:
    """What other builders need from the trail: its ARN (outputs, consumers)."""

    resource: cloudtrail.Trail

    @property
    def arn(self) -> GetAtt:
        return GetAtt(self.resource, "Arn")


def trail_log_group(template: Template, *, environment: str, key: KeyHandle,
                    retention_days: int, title: str = "AuditTrailLogGroup") -> logs.LogGroup:
    """KMS-encrypted, retained log group; grants the regional Logs service use of ``key``
    for this log group only (``kms:EncryptionContext:aws:logs:arn``)."""
    key.add_statement(policies.allow_service(
        "CloudWatchLogsEncryptTrailLogGroup", Sub("logs.${AWS::Region}.amazonaws.com"),
        policies.LOG_GROUP_KEY_ACTIONS, ["*"],
        ArnEquals(keys.LOGS_CONTEXT, Sub(naming.log_group_arn_sub(environment))),
    ))
    return template.add_resource(logs.LogGroup(
        title,
        LogGroupName=naming.log_group_name(environment),
        KmsKeyId=key.arn,
        RetentionInDays=retention_days,
        Tags=standard_tags(environment),
        Metadata=context("CloudTrail's copy for metric filters; encrypted with the audit key so a "
                         "disabled PHI key cannot blind the alarms."),
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
    ))


def _delivery_role(template: Template, environment: str, log_group: logs.LogGroup) -> iam.Role:
    """Least privilege for CloudTrail -> CloudWatch Logs: create streams and put events in this
    group's CloudTrail streams only. (CloudTrail documents no SourceArn support for this role.)"""
    streams = Sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
                  f"{naming.log_group_name(environment)}:log-stream:${{AWS::AccountId}}_CloudTrail_*")
    return template.add_resource(iam.Role(
        "AuditTrailLogDeliveryRole",
        Description=f"CloudTrail delivers {naming.trail_name(environment)} events to its log group",
        AssumeRolePolicyDocument=policies.policy_document([Statement(
            Sid="CloudTrailAssumesRole", Effect=Allow,
            Principal=Principal("Service", "cloudtrail.amazonaws.com"),
            Action=[sts_actions.AssumeRole],
        )]),
        Policies=[iam.Policy(
            PolicyName="deliver-to-trail-log-group",
            PolicyDocument=policies.policy_document([Statement(
                Sid="WriteTrailEventsToItsLogGroupOnly", Effect=Allow,
                Action=[logs_actions.CreateLogStream, logs_actions.PutLogEvents],
                Resource=[streams],
            )]),
        )],
        Tags=standard_tags(environment),
        Metadata=context("Lets CloudTrail write this trail's events to its log group and nothing else."),
        DependsOn=[log_group.title],
    ))


def audit_trail(template: Template, *, environment: str, key: KeyHandle, bucket: BucketHandle,
                log_group: logs.LogGroup, title: str = "AuditTrail") -> TrailHandle:
    """Multi-region trail of all management events, validated and encrypted with ``key``."""
    trail_arn = Sub(naming.trail_arn_sub(environment))
    key.add_statement(
        policies.allow_service(
            "CloudTrailEncryptLogFiles", "cloudtrail.amazonaws.com", policies.CLOUDTRAIL_ENCRYPT_ACTIONS,
            ["*"],
            StringLike(keys.CLOUDTRAIL_CONTEXT,
                       Sub("arn:${AWS::Partition}:cloudtrail:*:${AWS::AccountId}:trail/*")),
            StringEquals(keys.SOURCE_ARN, trail_arn),
        ),
        # No encryption-context condition: DescribeKey carries none.
        policies.allow_service(
            "CloudTrailDescribeKey", "cloudtrail.amazonaws.com", policies.CLOUDTRAIL_DESCRIBE_ACTIONS,
            ["*"], StringEquals(keys.SOURCE_ARN, trail_arn),
        ),
    )
    bucket.add_statement(
        policies.allow_service(
            "CloudTrailAclCheck", "cloudtrail.amazonaws.com", [s3_actions.GetBucketAcl], [bucket.arn],
            StringEquals(keys.SOURCE_ARN, trail_arn),
        ),
        policies.allow_service(
            "CloudTrailWriteLogs", "cloudtrail.amazonaws.com", [s3_actions.PutObject],
            [bucket.objects("AWSLogs/${AWS::AccountId}/")],
            StringEquals({keys.S3_ACL: "bucket-owner-full-control", keys.SOURCE_ARN: trail_arn}),
        ),
    )
    role = _delivery_role(template, environment, log_group)
    trail = template.add_resource(cloudtrail.Trail(
        title,
        TrailName=naming.trail_name(environment),
        IsLogging=True,
        IsMultiRegionTrail=True,
        IncludeGlobalServiceEvents=True,
        EnableLogFileValidation=True,
        KMSKeyId=key.arn,
        S3BucketName=bucket.name,
        CloudWatchLogsLogGroupArn=GetAtt(log_group, "Arn"),
        CloudWatchLogsRoleArn=GetAtt(role, "Arn"),
        # Every read and write management event; kms.amazonaws.com is never excluded.
        EventSelectors=[cloudtrail.EventSelector(IncludeManagementEvents=True, ReadWriteType="All")],
        Tags=standard_tags(environment),
        Metadata=context("Records every use and management of the key, in every region (HIPAA audit).",
                         must=["kms.amazonaws.com is never excluded", "log file validation stays on"]),
        # Bucket policy first, or creation races it and fails (decision D3). The key policy is
        # part of the key, which KMSKeyId already waits for.
        DependsOn=[bucket.policy_resource.title],
    ))
    return TrailHandle(trail)
