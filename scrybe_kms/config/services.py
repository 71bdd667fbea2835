"""The AWS services a role may use the PHI key through, and what each needs from the key.

A value table in the troposphere style: the configuration validates names against it, the
template renders ``kms:ViaService`` endpoints from it, and the access evaluation builds its rows
from it. Sources are in docs/decisions.md (D14).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SERVICES", "ViaService", "via_service_endpoint"]


@dataclass(frozen=True)
class ViaService:
    #: The service's endpoint prefix in ``kms:ViaService`` (``<prefix>.<region>.amazonaws.com``).
    endpoint: str
    #: The service keeps the key attached to a resource through KMS grants it creates with the
    #: caller's credentials (CreateGrant with ``kms:GrantIsForAWSResource``), so the role that
    #: creates the resource needs the grant operations too.
    grants: bool
    what: str


#: Setting name -> how the service reaches the key. ``logs`` is absent on purpose: CloudWatch Logs
#: uses the key as its own service principal (``logs.<region>.amazonaws.com``) under an encryption
#: context naming the log group, never through the caller, so ``kms:ViaService`` does not apply.
SERVICES: dict[str, ViaService] = {
    "backup": ViaService("backup", True, "AWS Backup copies and restores of resources under the key"),
    "dynamodb": ViaService("dynamodb", True, "DynamoDB tables encrypted with the key"),
    "ebs": ViaService("ec2", True, "EBS volumes and snapshots (through EC2) encrypted with the key"),
    "lambda": ViaService("lambda", True, "Lambda environment variables and function code encrypted with the key"),
    "rds": ViaService("rds", True, "RDS and Aurora storage, snapshots and Performance Insights"),
    "s3": ViaService("s3", False, "S3 objects with SSE-KMS under the key"),
    "secretsmanager": ViaService("secretsmanager", False, "Secrets Manager secrets encrypted with the key"),
    "sns": ViaService("sns", False, "SNS topics with server-side encryption under the key"),
    "sqs": ViaService("sqs", False, "SQS queues with server-side encryption under the key"),
}


def via_service_endpoint(service: str, region: str) -> str:
    """``rds`` in ``us-west-2`` -> ``rds.us-west-2.amazonaws.com``, the value KMS puts in
    ``kms:ViaService`` for a request the service makes on the caller's behalf."""
    return f"{SERVICES[service].endpoint}.{region}.amazonaws.com"
