"""The audit-log bucket and its access-log bucket: encryption, privacy, retention, policy."""

from __future__ import annotations

import json
from typing import Any

import pytest

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.template import render
from tests.helpers import config, statements

TRAIL_ARN = {"Fn::Sub": "arn:${AWS::Partition}:cloudtrail:${AWS::Region}:${AWS::AccountId}:trail/"
                        "scrybe-phi-audit-trail-{env}"}


def bucket(template: dict[str, Any], title: str) -> dict[str, Any]:
    return template["Resources"][title]


@pytest.mark.parametrize("title", ["AuditLogBucket", "AuditLogAccessLogBucket"])
def test_both_buckets_are_private_versioned_and_retained(template: dict[str, Any], title: str) -> None:
    b = bucket(template, title)
    props = b["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert (b["DeletionPolicy"], b["UpdateReplacePolicy"]) == ("Retain", "Retain")
    tls = statements(template["Resources"][f"{title}Policy"]["Properties"]["PolicyDocument"])["DenyInsecureTransport"]
    assert tls["Effect"] == "Deny" and tls["Principal"] == "*" and tls["Action"] == ["s3:*"]
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert tls["Resource"][0] == {"Fn::GetAtt": [title, "Arn"]}
    # The plain form readers and policy scanners expect for object ARNs.
    assert tls["Resource"][1] == {"Fn::Sub": "${" + title + ".Arn}/*"}


def test_audit_bucket_uses_the_phi_key_without_a_bucket_key(template: dict[str, Any]) -> None:
    """No S3 Bucket Key: CloudTrail's encryption context must reach KMS for the auditors' condition (D16)."""
    rule = bucket(template, "AuditLogBucket")["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule == [{"BucketKeyEnabled": False, "ServerSideEncryptionByDefault": {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": ["PhiKey", "Arn"]}}}]


def test_access_log_bucket_uses_sse_s3_as_s3_requires(template: dict[str, Any]) -> None:
    rule = bucket(template, "AuditLogAccessLogBucket")["Properties"]["BucketEncryption"]
    assert rule == {"ServerSideEncryptionConfiguration": [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


def test_audit_bucket_lifecycle_keeps_every_version_for_the_retention_period(
        template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    """Each version locked for the retention period, then expired and removed within two days;
    only files large enough to transition are archived (D28, D29)."""
    days = cfg.audit_log_retention_days
    assert days == 2557
    props = bucket(template, "AuditLogBucket")["Properties"]
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"] == {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {
        "Mode": cfg.audit_log_object_lock.upper(), "Days": days}}}
    assert props["LifecycleConfiguration"]["Rules"] == [
        {"Id": "ArchiveLargeLogFiles", "Status": "Enabled", "ObjectSizeGreaterThan": "131072",
         "Transitions": [{"StorageClass": "GLACIER_IR", "TransitionInDays": 90},
                         {"StorageClass": "DEEP_ARCHIVE", "TransitionInDays": 365}]},
        {"Id": "ExpireAfterRetention", "Status": "Enabled", "ExpirationInDays": days,
         # Locked versions cannot be expired early, so a noncurrent version goes a day after it
         # became noncurrent: kept at least `days`, not 2 x `days`.
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
        {"Id": "RemoveExpiredDeleteMarkers", "Status": "Enabled", "ExpiredObjectDeleteMarker": True},
    ]


def test_without_object_lock_noncurrent_versions_wait_the_full_period() -> None:
    """Without a lock an overwrite could make a version noncurrent early; it must still be kept."""
    template = json.loads(render(config(audit_log_object_lock=None)))
    props = template["Resources"]["AuditLogBucket"]["Properties"]
    assert "ObjectLockEnabled" not in props and "ObjectLockConfiguration" not in props
    [expire] = [r for r in props["LifecycleConfiguration"]["Rules"] if r["Id"] == "ExpireAfterRetention"]
    assert expire["NoncurrentVersionExpiration"] == {"NoncurrentDays": 2557}


def test_access_log_bucket_has_no_lock_and_keeps_its_versions(template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    """S3 cannot deliver server access logs to a bucket with Object Lock."""
    props = bucket(template, "AuditLogAccessLogBucket")["Properties"]
    assert "ObjectLockEnabled" not in props
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    assert set(rules) == {"ExpireAfterRetention", "RemoveExpiredDeleteMarkers"}
    assert rules["ExpireAfterRetention"]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": cfg.audit_log_retention_days}


def test_audit_bucket_logs_access_to_the_access_log_bucket(template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    b = bucket(template, "AuditLogBucket")
    assert b["Properties"]["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": "AuditLogAccessLogBucket"}, "LogFilePrefix": "audit-logs-bucket/"}
    # With DR, the replication role's policy exists before replication starts (S3 retries no failed version).
    assert b["DependsOn"] == ["AuditLogAccessLogBucketPolicy"] + (
        ["AuditLogReplicationRolePolicy"] if cfg.multi_region else [])
    delivery = statements(template["Resources"]["AuditLogAccessLogBucketPolicy"]["Properties"]["PolicyDocument"])[
        "S3ServerAccessLogDelivery"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Action"] == ["s3:PutObject"]
    assert delivery["Condition"] == {
        "ArnLike": {"aws:SourceArn": {"Fn::Sub": ["arn:${AWS::Partition}:s3:::${BucketName}", {
            "BucketName": b["Properties"]["BucketName"]}]}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }


def test_cloudtrail_delivery_statements_are_scoped_to_this_trail(template: dict[str, Any], env: str) -> None:
    trail_arn = {"Fn::Sub": TRAIL_ARN["Fn::Sub"].replace("{env}", env)}
    policy = statements(template["Resources"]["AuditLogBucketPolicy"]["Properties"]["PolicyDocument"])
    assert set(policy) - {"AuditorsReadAuditLogs"} == {
        "DenyInsecureTransport", "DenyAuditLogVersionDeletion", "CloudTrailAclCheck", "CloudTrailWriteLogs"}
    assert policy["CloudTrailAclCheck"] == {
        "Sid": "CloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": ["s3:GetBucketAcl"], "Resource": [{"Fn::GetAtt": ["AuditLogBucket", "Arn"]}],
        "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}}}
    assert policy["CloudTrailWriteLogs"] == {
        "Sid": "CloudTrailWriteLogs", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
        "Action": ["s3:PutObject"],
        "Resource": [{"Fn::Sub": "${AuditLogBucket.Arn}/AWSLogs/${AWS::AccountId}/*"}],
        "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}}}
    deny = policy["DenyAuditLogVersionDeletion"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", ["s3:DeleteObjectVersion"])
    # Every object version in the bucket, not the bucket ARN (which no object request names).
    assert deny["Resource"] == [{"Fn::Sub": "${AuditLogBucket.Arn}/*"}]
    assert "Condition" not in deny
