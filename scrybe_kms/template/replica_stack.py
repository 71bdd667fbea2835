"""Assemble a disaster-recovery region's stack (``out/<env>.replica-<region>.json``).

In each DR region: a replica of the multi-Region PHI key, with the primary's aliases and key-policy
shape; the audit bucket's copy (encrypted with that replica, versioned, private, TLS-only, the same
retention and Object Lock) and its access-log bucket; and the second alarm channel for this region.
The multi-Region trail already delivers this region's events to the home log group, where the filter
stack matches the replica by its key ID; EventBridge rules are regional, so a rule here forwards the
watched KMS and S3 events to the home region's default event bus, where the alarm stack's rules match
them (decision D51). The primary key's ARN is a parameter: exports do not cross regions (D49).
"""

from __future__ import annotations

import awacs.events as events_actions
import awacs.kms as kms_actions
import awacs.sts as sts_actions
from awacs.aws import Allow, Principal, Statement
from troposphere import GetAtt, Parameter, Ref, Sub, Template, events, iam

from scrybe_kms.config import ConfigError, EnvironmentConfig, naming
from scrybe_kms.template import alarms, bucket, key, key_users, monitoring, outputs, policies, replication
from scrybe_kms.template.assemble import render_checked, rules
from scrybe_kms.template.context import context, template_context
from scrybe_kms.template.key_statements import EmergencyMfa
from scrybe_kms.template.tags import standard_tags

__all__ = ["PRIMARY_KEY_PARAMETER", "build_replica_template", "forwarded_event_pattern", "render_replica"]

PRIMARY_KEY_PARAMETER = "PrimaryKeyArn"
#: Where EventBridge routes events between regions: not to GovCloud or China regions (EventBridge user
#: guide, cross-Region), where a DR region relies on the metric-filter channel alone (D51).
FORWARDING_PARTITIONS = ("aws",)


def _checked_region(cfg: EnvironmentConfig, region: str) -> str:
    if region not in cfg.disaster_recovery_regions:
        raise ConfigError([f"'region' must be one of the {cfg.environment} configuration's disaster_recovery_regions "
                           f"({', '.join(cfg.disaster_recovery_regions) or 'none'}) (got {region!r})"],
                          "build_replica_template")
    return region


def forwarded_event_pattern(cfg: EnvironmentConfig) -> dict[str, object]:
    """The KMS and S3 calls any watched event names, from CloudTrail in this region: the home rules
    decide which concern this environment's key, aliases and buckets."""
    watched = [w for w in monitoring.watched_events(cfg) if w.source in ("kms", "s3")]
    return {"detail-type": ["AWS API Call via CloudTrail"], "detail": {
        "eventSource": sorted({f"{w.source}.amazonaws.com" for w in watched}),
        "eventName": sorted({name for w in watched for name in w.event_names}),
    }}


def _forwarding(t: Template, cfg: EnvironmentConfig, region: str) -> None:
    """The rule forwarding this region's watched events to the home bus, its role and dead-letter
    queue, and the alarms that report a failed forward through a topic in this region."""
    env = cfg.environment
    home_bus = Sub(f"arn:${{AWS::Partition}}:events:{cfg.aws_region}:${{AWS::AccountId}}:event-bus/default")
    role = t.add_resource(iam.Role(
        "AuditEventForwardingRole",
        # Named, so the DrRolesChanged filter can tell it from any other role.
        RoleName=naming.forwarding_role_name(env, region),
        AssumeRolePolicyDocument=policies.policy_document([Statement(
            Sid="EventBridgeForwardsAuditEvents", Effect=Allow, Principal=Principal("Service", "events.amazonaws.com"),
            Action=[sts_actions.AssumeRole])]),
        Policies=[iam.Policy(PolicyName="put-events-on-home-bus", PolicyDocument=policies.policy_document([Statement(
            Sid="PutEventsOnTheHomeRegionDefaultBusOnly", Effect=Allow, Action=[events_actions.PutEvents],
            Resource=[home_bus])]))],
        Tags=standard_tags(env),
        Metadata=context(f"EventBridge sends this region's watched events to the {cfg.aws_region} default bus."),
    ))
    rule_title = "AuditEventForwardRule"
    queue = alarms.dead_letter_queue(t, environment=env, rule_titles=[rule_title])
    rule = t.add_resource(events.Rule(
        rule_title,
        # Starts like the home rules' names, so the AlarmPathTampered filter covers changes to it.
        Name=naming.event_rule_name(env, "audit-events-forward"),
        Description=f"Forwards watched KMS and S3 events to {cfg.aws_region}, where the alarm stack reports them",
        State="ENABLED",
        EventPattern=forwarded_event_pattern(cfg),
        # Event-bus targets take a dead-letter queue; a retry policy is not documented for them.
        Targets=[events.Target(Id="HomeRegionBus", Arn=home_bus, RoleArn=GetAtt(role, "Arn"),
                               DeadLetterConfig=events.DeadLetterConfig(Arn=GetAtt(queue, "Arn")))],
        Metadata=context("Second channel for this region: CloudTrail -> EventBridge here -> home bus -> alarm "
                         "stack rules -> alarm topic."),
    ))
    topic = alarms.alarm_topic(t, environment=env, kind="watchdog", emails=cfg.alarm_emails, title="WatchdogTopic",
                               why="Reports, from this region, that forwarding audit events home failed.")
    alarms.topic_policy(t, environment=env, topic=topic, events_publish=False, title="WatchdogTopicPolicy")
    alarms.forwarding_alarms(t, environment=env, rule=rule, queue=queue, topic=topic)


def build_replica_template(cfg: EnvironmentConfig, region: str) -> Template:
    """The stack for DR region ``region`` (one of ``cfg.disaster_recovery_regions``)."""
    region = _checked_region(cfg, region)
    env = cfg.environment
    t = Template(Description=f"Scrybe PHI encryption: PHI key replica and audit-log copy in {region} ({env})")
    t.set_metadata(template_context(
        arch=f"PHI key (multi-Region, {cfg.aws_region}) -> replica here; audit bucket ({cfg.aws_region}) -> S3 "
             "replication -> this region's audit bucket (SSE-KMS with the replica); watched events here -> "
             f"EventBridge -> {cfg.aws_region} default bus -> alarm stack",
        must=[f"deploy only to region {region} and account {cfg.account_id} (template Rules)",
              f"the key stack in {cfg.aws_region} first: {PRIMARY_KEY_PARAMETER} is its KmsKeyArn output",
              "replica, aliases, buckets and bucket policies are retained on delete and replace"],
    ))
    rules(t, cfg, region)
    t.add_parameter(Parameter(
        PRIMARY_KEY_PARAMETER, Type="String",
        AllowedPattern=f"^arn:{cfg.partition}:kms:{cfg.aws_region}:{cfg.account_id}:key/mrk-[0-9a-f]{{32}}$",
        ConstraintDescription=f"the KmsKeyArn output of {naming.stack_name(env)} in {cfg.aws_region}: a multi-Region "
                              "key ARN (key/mrk-...)",
        Description=f"The PHI key's ARN: the KmsKeyArn output of {naming.stack_name(env)} in {cfg.aws_region}"))

    emergency_mfa: EmergencyMfa = "identity-provider" if cfg.emergency_access_mfa == "identity-provider" \
        else "session"
    replica = key.replica_key(
        t, "PhiKeyReplica", environment=env, primary_key_arn=Ref(PRIMARY_KEY_PARAMETER),
        description=f"Scrybe PHI master key, replica in {region} ({env})",
        admin_role_arns=cfg.admin_role_arns, emergency_role_arn=cfg.emergency_access_role_arn,
        emergency_mfa=emergency_mfa, deletion_window_days=cfg.deletion_window_days, purpose="phi-encryption",
        why="Decrypts, in this region, whatever the primary PHI key encrypted: PHI backups and replicas here, and "
            "the audit-log copies. Same principals and conditions as the primary (ViaService names this region).")
    key_users.add_key_users(replica, cfg, log_readers=False)
    copies = naming.dr_audit_bucket_name_sub(env, region)
    if cfg.audit_log_reader_role_arns:
        replica.add_statement(replication.allow_use_through_s3(
            "AuditorsDecryptAuditLogCopiesOnlyThroughS3", cfg.audit_log_reader_role_arns, kms_actions.Decrypt, copies))
    replica.add_statement(replication.allow_replica_encrypt(replication.replication_role_arn(cfg), copies))
    key_users.add_compliance_readers(replica, cfg)
    key.key_aliases(t, replica, cfg.aliases, title_prefix="PhiKeyAlias")

    access_logs = bucket.access_log_bucket(
        t, environment=env, name=Sub(naming.dr_access_log_bucket_name_sub(env, region)),
        retention_days=cfg.audit_log_retention_days)
    logs_bucket = bucket.audit_log_bucket(
        t, environment=env, name=Sub(copies), key=replica, access_logs=access_logs,
        retention_days=cfg.audit_log_retention_days, object_lock=cfg.audit_log_object_lock)
    if cfg.audit_log_reader_role_arns:
        logs_bucket.allow_readers("AuditorsReadAuditLogs", cfg.audit_log_reader_role_arns)
    if cfg.partition in FORWARDING_PARTITIONS:
        _forwarding(t, cfg, region)
    outputs.add_replica_outputs(t, environment=env, key=replica, alias=cfg.primary_alias, bucket=logs_bucket.resource)
    return t


def render_replica(cfg: EnvironmentConfig, region: str) -> str:
    """A DR region's template (``out/<env>.replica-<region>.json``)."""
    return render_checked(build_replica_template(cfg, region), f"{cfg.environment} {region} replica")

