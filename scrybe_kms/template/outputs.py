"""Stack outputs, named after the original Terraform outputs, exported under stable names;
and the import helpers other Scrybe stacks use to consume them.

The export names come from :func:`scrybe_kms.config.naming.export_name` on both sides, so a producer
and a consumer cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from troposphere import Export, ImportValue, Output, Ref, Sub, Template

from scrybe_kms.config import Environment, naming
from scrybe_kms.config.validators import environment as check_environment
from scrybe_kms.template.key import KeyHandle
from scrybe_kms.template.trail import TrailHandle

__all__ = [
    "OUTPUTS",
    "add_outputs",
    "add_replica_outputs",
    "audit_logs_bucket",
    "cloudtrail_arn",
    "import_output",
    "kms_key_alias",
    "kms_key_arn",
    "kms_key_id",
]

#: Output logical ID -> the original Terraform output it stands for.
OUTPUTS = {
    "KmsKeyId": "kms_key_id",
    "KmsKeyArn": "kms_key_arn",
    "KmsKeyAlias": "kms_key_alias",
    "CloudTrailArn": "cloudtrail_arn",
    "AuditLogsBucket": "audit_logs_bucket",
    "EnvironmentConfig": "environment_config",
    # Not in the original: the alarm stack imports it to watch the audit-path key.
    "AuditKeyArn": "audit_key_arn",
    # The alarm stack's topics, which the filter stack's alarms notify.
    "AlarmTopicArn": "alarm_topic_arn",
    "WatchdogTopicArn": "watchdog_topic_arn",
}


def _key_values(key: KeyHandle, alias: str, bucket: Any, what: str) -> dict[str, tuple[Any, str]]:
    env_config = Sub(
        # No AWS_KMS_KEY_ALIAS: an alias can be retargeted by an admin; the key ARN cannot (D12).
        "AWS_KMS_KEY_ID=${KeyId}\nAWS_KMS_KEY_ARN=${KeyArn}\nAWS_KMS_REGION=${AWS::Region}\n",
        KeyId=key.key_id, KeyArn=key.arn,
    )
    return {
        "KmsKeyId": (key.key_id, f"KMS key ID of the {what}"),
        "KmsKeyArn": (key.arn, f"KMS key ARN of the {what}"),
        "KmsKeyAlias": (alias, f"Primary alias of the {what}"),
        "AuditLogsBucket": (Ref(bucket), "S3 bucket holding the audit logs"),
        "EnvironmentConfig": (env_config, "Lines for the application's .env file"),
    }


def add_outputs(template: Template, *, environment: Environment, key: KeyHandle, audit_key: KeyHandle, alias: str,
                trail: TrailHandle, bucket: Any) -> None:
    """Add the outputs (the original six and the audit key ARN), each exported as
    ``scrybe-kms-<env>-<Output>``."""
    values = _key_values(key, alias, bucket, "PHI master key")
    values["CloudTrailArn"] = (trail.arn, "CloudTrail trail auditing the key")
    values["AuditKeyArn"] = (audit_key.arn, "KMS key ARN of the audit-path key")
    _export(template, environment, values)


def add_replica_outputs(template: Template, *, environment: Environment, key: KeyHandle, alias: str,
                        bucket: Any) -> None:
    """A DR region's outputs, exported under the same names as the home region's: exports are
    regional, so a consumer stack in the DR region imports the replica with the same helpers."""
    _export(template, environment, _key_values(key, alias, bucket, "PHI master key's replica in this region"))


def _export(template: Template, environment: Environment, values: dict[str, tuple[Any, str]]) -> None:
    for title, (value, description) in values.items():
        template.add_output(Output(
            title, Description=f"{description} ({OUTPUTS[title]})", Value=value,
            Export=Export(naming.export_name(environment, title)),
        ))


def import_output(environment: Environment, output: str) -> ImportValue:
    """``Fn::ImportValue`` of one of this library's outputs in ``environment``."""
    if output not in OUTPUTS:
        raise ValueError(f"'output' must be one of {', '.join(OUTPUTS)} (got {output!r})")
    return ImportValue(naming.export_name(check_environment("environment", environment), output))


def kms_key_arn(environment: Environment) -> ImportValue:
    """For another Scrybe stack: ``KmsKeyArn=kms_key_arn("production")``."""
    return import_output(environment, "KmsKeyArn")


def kms_key_id(environment: Environment) -> ImportValue:
    return import_output(environment, "KmsKeyId")


def kms_key_alias(environment: Environment) -> ImportValue:
    return import_output(environment, "KmsKeyAlias")


def cloudtrail_arn(environment: Environment) -> ImportValue:
    return import_output(environment, "CloudTrailArn")


def audit_logs_bucket(environment: Environment) -> ImportValue:
    return import_output(environment, "AuditLogsBucket")
