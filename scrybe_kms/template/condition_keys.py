"""Condition keys the policies use, in one place.

Global keys come from :mod:`awacs.aws` (``aws.SourceArn`` ...). awacs ships no constants for
service-specific condition keys, so the KMS and S3 keys are defined here once, spelled as the
service authorization reference spells them, and every statement refers to these names.
"""

from __future__ import annotations

from awacs import aws

__all__ = [
    "BYPASS_LOCKOUT_SAFETY_CHECK",
    "CALLER_ACCOUNT",
    "CLOUDTRAIL_CONTEXT",
    "GRANT_IS_FOR_AWS_RESOURCE",
    "LOGS_CONTEXT",
    "MFA_PRESENT",
    "PRINCIPAL_ARN",
    "REPLICA_REGION",
    "S3_ACL",
    "S3_CONTEXT",
    "SECURE_TRANSPORT",
    "SOURCE_ACCOUNT",
    "SOURCE_ARN",
    "VIA_SERVICE",
]

SOURCE_ARN: str = aws.SourceArn
SOURCE_ACCOUNT: str = aws.SourceAccount
SECURE_TRANSPORT: str = aws.SecureTransport
MFA_PRESENT: str = aws.MultiFactorAuthPresent
PRINCIPAL_ARN: str = aws.PrincipalArn

VIA_SERVICE = "kms:ViaService"
CALLER_ACCOUNT = "kms:CallerAccount"
GRANT_IS_FOR_AWS_RESOURCE = "kms:GrantIsForAWSResource"
BYPASS_LOCKOUT_SAFETY_CHECK = "kms:BypassPolicyLockoutSafetyCheck"
CLOUDTRAIL_CONTEXT = "kms:EncryptionContext:aws:cloudtrail:arn"
LOGS_CONTEXT = "kms:EncryptionContext:aws:logs:arn"
#: S3's encryption context: the object's ARN (the bucket's with an S3 Bucket Key).
S3_CONTEXT = "kms:EncryptionContext:aws:s3:arn"
#: The region ``kms:ReplicateKey`` would create a replica in.
REPLICA_REGION = "kms:ReplicaRegion"

S3_ACL = "s3:x-amz-acl"
