"""Assemble one environment's template from a validated configuration.

Pure: reads no file and no environment variable, so the same configuration always gives the
same template, and tests can call it directly.
"""

from __future__ import annotations

from functools import partial

from troposphere import Sub, Template

from scrybe_kms.config import EnvironmentConfig, naming
from scrybe_kms.template import bucket, key, key_statements, key_users, outputs, replication, trail
from scrybe_kms.template.context import template_context
from scrybe_kms.template.key_statements import EmergencyMfa

__all__ = ["MAX_TEMPLATE_BODY", "TemplateTooLarge", "build_template", "render"]

#: CloudFormation's limit for a template passed inline (``aws cloudformation deploy
#: --template-file`` without ``--s3-bucket``, or ``TemplateBody``).
MAX_TEMPLATE_BODY = 51_200


class TemplateTooLarge(ValueError):
    """The rendered template would not deploy the way the README says."""


def rules(template: Template, cfg: EnvironmentConfig, region: str | None = None) -> None:
    """Template rules: a template built for one account and region (``cfg.aws_region`` unless
    ``region`` names a DR region) deploys nowhere else."""
    region = region or cfg.aws_region
    template.add_rule("DeployOnlyToConfiguredRegion", {"Assertions": [{
        "Assert": {"Fn::Equals": [{"Ref": "AWS::Region"}, region]},
        "AssertDescription": f"This template was built for region {region} "
                             f"({cfg.environment}); deploy it there, or rebuild it for another region.",
    }]})
    template.add_rule("DeployOnlyToConfiguredAccount", {"Assertions": [{
        "Assert": {"Fn::Equals": [{"Ref": "AWS::AccountId"}, cfg.account_id]},
        "AssertDescription": f"This template was built for account {cfg.account_id} "
                             f"({cfg.environment}), the account its IAM roles live in.",
    }]})


def build_template(cfg: EnvironmentConfig) -> Template:
    env = cfg.environment
    t = Template(Description=f"Scrybe PHI encryption: KMS master key, audit-path key and audit trail ({env})")
    t.set_metadata(template_context(
        arch="PHI KMS key -> used by the app role and named service consumers; CloudTrail (all regions, all "
             "management events) -> S3 audit bucket (SSE-KMS with the PHI key, retention lifecycle, "
             "access-logged) and -> CloudWatch Logs (audit key); <env>.filters.json counts what it logs and "
             "<env>.alarms.json reports it",
        must=[
            f"deploy only to region {cfg.aws_region} and account {cfg.account_id} (template Rules)",
            "nothing on the alarm path is encrypted with, or depends on, the PHI key",
            "key, aliases, buckets, bucket policies and log group are retained on delete and replace",
        ],
    ))
    rules(t, cfg)

    emergency_mfa: EmergencyMfa = "identity-provider" if cfg.emergency_access_mfa == "identity-provider" \
        else "session"
    # Both keys share their administration, break-glass access and deletion window.
    new_key = partial(key.managed_key, t, environment=env, admin_role_arns=cfg.admin_role_arns,
                      emergency_role_arn=cfg.emergency_access_role_arn, emergency_mfa=emergency_mfa,
                      deletion_window_days=cfg.deletion_window_days)
    phi = new_key(
        "PhiKey", purpose="phi-encryption", multi_region=cfg.multi_region,
        description=f"Scrybe PHI master key ({env})",
        why="Customer-managed key for all PHI Scrybe stores; the application role may only use it, "
            "admins may only manage it, the emergency role needs MFA.",
    )
    key_users.add_key_users(phi, cfg)
    if cfg.multi_region:
        phi.add_statement(key_statements.allow_replication_to_regions(
            "KeyAdministratorsReplicateOnlyToDrRegions", cfg.admin_role_arns, cfg.disaster_recovery_regions))
    key.key_aliases(t, phi, cfg.aliases, title_prefix="PhiKeyAlias")

    audit = new_key(
        "AuditKey", purpose="audit-path",
        description=f"Scrybe audit-path key for the trail log group ({env})",
        why="Separate key for the trail's log group, so disabling the PHI key cannot "
            "silence the alarm that reports it.",
    )
    key.key_aliases(t, audit, [naming.audit_alias(env)], title_prefix="AuditKeyAlias")
    for handle in (phi, audit):
        key_users.add_compliance_readers(handle, cfg)

    access_logs = bucket.access_log_bucket(
        t, environment=env, name=Sub(naming.access_log_bucket_name_sub(env)),
        retention_days=cfg.audit_log_retention_days)
    logs_bucket = bucket.audit_log_bucket(
        t, environment=env, name=Sub(naming.audit_bucket_name_sub(env)), key=phi,
        access_logs=access_logs, retention_days=cfg.audit_log_retention_days,
        object_lock=cfg.audit_log_object_lock)
    if cfg.audit_log_reader_role_arns:
        logs_bucket.allow_readers("AuditorsReadAuditLogs", cfg.audit_log_reader_role_arns)
    if cfg.multi_region:
        replication.add_replication(t, cfg, phi, logs_bucket)

    log_group = trail.trail_log_group(t, environment=env, key=audit,
                                      retention_days=cfg.audit_log_retention_days)
    audit_trail = trail.audit_trail(t, environment=env, key=phi, bucket=logs_bucket, log_group=log_group)

    outputs.add_outputs(t, environment=env, key=phi, audit_key=audit, alias=cfg.primary_alias,
                        trail=audit_trail, bucket=logs_bucket.resource)
    return t


def render_checked(template: Template, what: str) -> str:
    """Deterministic JSON (sorted keys, one-space indent, trailing newline), refused when it would not
    deploy inline with ``aws cloudformation deploy --template-file`` (51,200 bytes)."""
    text: str = template.to_json(indent=1, sort_keys=True) + "\n"
    size = len(text.encode("utf-8"))
    if size > MAX_TEMPLATE_BODY:
        raise TemplateTooLarge(
            f"the {what} template is {size} bytes, over CloudFormation's {MAX_TEMPLATE_BODY}-byte limit for "
            "--template-file without --s3-bucket; name fewer aliases or roles")
    return text


def render(cfg: EnvironmentConfig) -> str:
    """The key stack's template (``out/<env>.json``)."""
    return render_checked(build_template(cfg), cfg.environment)
