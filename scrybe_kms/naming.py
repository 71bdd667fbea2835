"""Every physical name, ARN and export name, in one place.

Names are fixed per environment so ARNs can be written with ``Fn::Sub`` before the resources
exist: the key policy can name its own trail and log group without a dependency cycle
(aws/aws-cdk#31400). Producer (outputs) and consumer (import helpers) share the export names.
"""

from __future__ import annotations

from troposphere import Sub

__all__ = [
    "PREFIX",
    "access_log_bucket_name",
    "alarm_name",
    "alarm_name_prefix",
    "audit_alias",
    "audit_bucket_name",
    "export_name",
    "log_group_arn",
    "log_group_name",
    "metric_namespace",
    "primary_alias",
    "stack_name",
    "trail_arn",
    "trail_name",
]

PREFIX = "scrybe-phi"


def stack_name(env: str) -> str:
    return f"scrybe-kms-{env}"


def primary_alias(env: str) -> str:
    """The alias the original created, and the one the application is configured with."""
    return f"alias/scrybe-phi-master-key-{env}"


def audit_alias(env: str) -> str:
    return f"alias/scrybe-phi-audit-key-{env}"


def trail_name(env: str) -> str:
    return f"{PREFIX}-audit-trail-{env}"


def trail_arn(env: str) -> Sub:
    return Sub("arn:${AWS::Partition}:cloudtrail:${AWS::Region}:${AWS::AccountId}:trail/"
               + trail_name(env))


def log_group_name(env: str) -> str:
    return f"/scrybe/kms/{env}/cloudtrail"


def log_group_arn(env: str) -> Sub:
    """The log group's ARN without the ``:*`` that ``GetAtt Arn`` appends (pitfall 2)."""
    return Sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
               + log_group_name(env))


def audit_bucket_name(env: str) -> Sub:
    return Sub(f"{PREFIX}-audit-logs-${{AWS::AccountId}}-{env}")


def access_log_bucket_name(env: str) -> Sub:
    return Sub(f"{PREFIX}-audit-access-logs-${{AWS::AccountId}}-{env}")


def alarm_name_prefix(env: str) -> str:
    return f"{PREFIX}-{env}-"


def alarm_name(env: str, what: str) -> str:
    return f"{alarm_name_prefix(env)}{what}"


def metric_namespace(env: str) -> str:
    return f"Scrybe/KMS/{env}"


def export_name(env: str, output: str) -> str:
    """``scrybe-kms-<env>-<Output>``: what other stacks import with ``Fn::ImportValue``."""
    return f"{stack_name(env)}-{output}"
