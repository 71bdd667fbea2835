"""Every physical name, ARN and export name, in one place, as plain strings.

Names are fixed per environment so ARNs can be written with ``Fn::Sub`` before the resources
exist: the key policy can name its own trail and log group without a dependency cycle
(decision D4, aws/aws-cdk#31400). Functions ending in ``_sub`` return a ``Fn::Sub`` template
string (``${AWS::Partition}``, ``${AWS::Region}``, ``${AWS::AccountId}``); the template layer
wraps them in ``Sub``. This module imports no troposphere, so configuration, deploy tooling and
import helpers share it without pulling in the builders.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "PREFIX",
    "Environment",
    "access_log_bucket_name_sub",
    "alarm_name",
    "alarm_name_prefix",
    "alarm_stack_name",
    "alarm_topic_arn_sub",
    "alarm_topic_name",
    "audit_alias",
    "audit_bucket_name_sub",
    "bucket_arn_sub",
    "dead_letter_queue_name",
    "dr_access_log_bucket_name_sub",
    "dr_audit_bucket_name_sub",
    "event_rule_name",
    "export_name",
    "forwarding_role_name",
    "log_group_arn_sub",
    "log_group_name",
    "metric_filter_name",
    "metric_namespace",
    "primary_alias",
    "replica_key_arn_sub",
    "replica_stack_name",
    "replication_role_name",
    "stack_name",
    "trail_arn_sub",
    "trail_name",
]

#: The environments this library builds; every public function that takes one checks it.
Environment = Literal["dev", "staging", "production"]

PREFIX = "scrybe-phi"
_ACCOUNT_ARN = "arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:"


def stack_name(env: str) -> str:
    return f"scrybe-kms-{env}"


def primary_alias(env: str) -> str:
    """The alias the original created. The application is given the key ARN, not this alias
    (decision D12): an alias can be retargeted."""
    return f"alias/scrybe-phi-master-key-{env}"


def audit_alias(env: str) -> str:
    return f"alias/scrybe-phi-audit-key-{env}"


def trail_name(env: str) -> str:
    return f"{PREFIX}-audit-trail-{env}"


def trail_arn_sub(env: str) -> str:
    return _ACCOUNT_ARN % "cloudtrail" + "trail/" + trail_name(env)


def log_group_name(env: str) -> str:
    return f"/scrybe/kms/{env}/cloudtrail"


def log_group_arn_sub(env: str) -> str:
    """The log group's ARN without the ``:*`` that ``GetAtt Arn`` appends (decision D4)."""
    return _ACCOUNT_ARN % "logs" + "log-group:" + log_group_name(env)


def audit_bucket_name_sub(env: str) -> str:
    return f"{PREFIX}-audit-logs-${{AWS::AccountId}}-{env}"


def access_log_bucket_name_sub(env: str) -> str:
    return f"{PREFIX}-audit-access-logs-${{AWS::AccountId}}-{env}"


def bucket_arn_sub(bucket_name_sub: str) -> str:
    """A bucket's ARN from its name (itself a ``Fn::Sub`` body): no ``GetAtt``, so no dependency."""
    return "arn:${AWS::Partition}:s3:::" + bucket_name_sub


def alarm_topic_arn_sub(env: str, kind: str = "alarms") -> str:
    return _ACCOUNT_ARN % "sns" + alarm_topic_name(env, kind)


def replica_key_arn_sub(region: str, key_id_variable: str = "PhiKey") -> str:
    """A multi-Region key's replica in ``region``: the primary's key ID (``${key_id_variable}``) in that
    region's ARN (related multi-Region keys share their key ID, decision D47)."""
    return f"arn:${{AWS::Partition}}:kms:{region}:${{AWS::AccountId}}:key/${{{key_id_variable}}}"


def replica_stack_name(env: str, region: str) -> str:
    """A DR region's stack: the PHI key's replica and the audit-log copy (decision D47)."""
    return f"scrybe-kms-{env}-replica-{region}"


def dr_audit_bucket_name_sub(env: str, region: str) -> str:
    """The audit bucket's copy in a DR region (at most 60 characters for the longest region names)."""
    return f"{PREFIX}-audit-logs-${{AWS::AccountId}}-{env}-{region}"


def dr_access_log_bucket_name_sub(env: str, region: str) -> str:
    return f"{PREFIX}-access-logs-${{AWS::AccountId}}-{env}-{region}"


def replication_role_name(env: str) -> str:
    """S3's role for replicating the audit logs to every DR region (IAM names are global)."""
    return f"{PREFIX}-audit-replication-{env}"


def forwarding_role_name(env: str, region: str) -> str:
    """EventBridge's role in a DR region for forwarding audit events home (at most 51 characters)."""
    return f"{PREFIX}-{env}-events-forward-{region}"


def alarm_stack_name(env: str) -> str:
    """The alarm stack, deployed after the key stack it imports from (decision D21)."""
    return f"scrybe-kms-{env}-alarms"


def alarm_topic_name(env: str, kind: str = "alarms") -> str:
    """``alarms``: every alarm; ``watchdog``: alarms about the alarm path itself (D26)."""
    return f"{PREFIX}-key-{kind}-{env}"


def dead_letter_queue_name(env: str) -> str:
    return f"{PREFIX}-audit-events-dlq-{env}"


def alarm_name_prefix(env: str) -> str:
    return f"{PREFIX}-{env}-"


def alarm_name(env: str, what: str) -> str:
    return f"{alarm_name_prefix(env)}{what}"


def metric_filter_name(env: str, what: str) -> str:
    return f"{PREFIX}-{env}-{what}"


def event_rule_name(env: str, what: str) -> str:
    return f"{PREFIX}-{env}-{what}"


def metric_namespace(env: str) -> str:
    return f"Scrybe/KMS/{env}"


def export_name(env: str, output: str) -> str:
    """``scrybe-kms-<env>-<Output>``: what other stacks import with ``Fn::ImportValue``."""
    return f"{stack_name(env)}-{output}"
