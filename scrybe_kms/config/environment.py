"""The configuration of one environment: the Terraform variables, typed, immutable, validated.

Construction validates everything at once, so a bad value never reaches a builder and the person
fixing it sees every problem in one run, each as ``'field' must be ... (got value)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scrybe_kms.config import naming
from scrybe_kms.config import validators as v
from scrybe_kms.config.naming import Environment
from scrybe_kms.config.rules import ServiceKeyUser, check

__all__ = ["ConfigError", "EnvironmentConfig", "ServiceKeyUser"]


class ConfigError(ValueError):
    """Every problem found in one configuration; ``problems`` holds one line per problem."""

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = "1 problem" if len(self.problems) == 1 else f"{len(self.problems)} problems"
        super().__init__(f"invalid configuration{where} ({count}):\n{lines}")


@dataclass(frozen=True)
class EnvironmentConfig:
    """Everything that differs between dev, staging and production.

    The first six fields are the original Terraform variables with the same meaning and rules.
    The rest are what an operator needs beyond them; each has a secure default. The rules are in
    :mod:`scrybe_kms.config.rules`.
    """

    #: dev, staging or production; names every resource and export.
    environment: Environment
    #: The only region the template may be deployed to (enforced by a template rule).
    aws_region: str
    #: The application's role: encrypt, decrypt, re-encrypt, generate data keys, describe. Nothing else.
    application_role_arn: str
    #: Key administrators: manage the key, never use it. At least one.
    admin_role_arns: Sequence[str]
    #: Break-glass role: every KMS action, only with a proven second factor. Optional.
    emergency_access_role_arn: str | None = None
    #: How the break-glass role proves MFA: "session" (aws:MultiFactorAuthPresent, IAM users who
    #: assume it with an MFA code) or "identity-provider" (SAML / IAM Identity Center / OIDC
    #: sessions, which never carry that key; MFA is enforced by the IdP, which must set SourceIdentity).
    emergency_access_mfa: str = "session"
    #: Waiting period before a scheduled deletion happens (7-30 days).
    deletion_window_days: int = 30
    #: An existing SNS topic (same region) that the alarms also notify.
    alarm_topic_arn: str | None = None
    #: Addresses subscribed to the alarm topic this stack creates.
    alarm_emails: Sequence[str] = ()
    #: How long audit logs are kept, in S3 and in CloudWatch Logs (default 7 years).
    audit_log_retention_days: int = 2557
    #: S3 Object Lock on the audit-log bucket: "compliance" (nobody, root included, can delete a log
    #: version before the retention ends), "governance" (only a principal allowed
    #: s3:BypassGovernanceRetention can), or None. Chosen when the bucket is created (D29).
    audit_log_object_lock: str | None = "compliance"
    #: Disaster-recovery regions (same partition, not ``aws_region``). When set, the PHI key is a
    #: multi-Region key with a replica in each, and the audit bucket replicates every log version to
    #: a bucket there (``out/<env>.replica-<region>.json``). ``MultiRegion`` cannot change on an
    #: existing key: adding the first region to, or removing the last from, a deployed environment
    #: needs a new key (the deploy command refuses it with the migration path; D47).
    disaster_recovery_regions: Sequence[str] = ()
    #: Aliases beside the primary ``alias/scrybe-phi-master-key-<env>``.
    additional_aliases: Sequence[str] = ()
    #: Roles that use the key only through AWS services, e.g. ``{"role_arn": ..., "services": ["rds"]}``:
    #: the application role, the roles that deploy consumer stacks. Default: none, as the original.
    key_use_through_services: Sequence[Any] = ()
    #: If set, the application role may use the key only through these services (kms:ViaService).
    #: Default: empty, the original's unconditioned crypto use.
    application_role_only_via_services: Sequence[str] = ()
    #: Auditors: may decrypt CloudTrail's log files in the audit bucket (through S3, under
    #: CloudTrail's encryption context) and read that bucket. Nothing else on either key.
    audit_log_reader_role_arns: Sequence[str] = ()
    #: AWS Backup's service role, if PHI resources under the key are backed up.
    backup_role_arn: str | None = None
    #: AWS Config and IAM Access Analyzer may read key metadata (never key material). On by default:
    #: without it Security Hub KMS.4 reports the keys NON_COMPLIANT.
    compliance_tools_read_key_metadata: bool = True

    # Derived in __post_init__, never passed in.
    account_id: str = field(init=False, repr=False, compare=False)
    partition: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        raw = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        problems, normalised = check(raw)
        if problems:
            env = self.environment if isinstance(self.environment, str) and self.environment in v.ENVIRONMENTS \
                else None
            raise ConfigError(problems, source=env and f"the {env} configuration")
        for name, value in normalised.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "account_id", v.arn_account(self.application_role_arn))
        object.__setattr__(self, "partition", v.arn_partition(self.application_role_arn))

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any], source: str | None = None) -> EnvironmentConfig:
        """Build from plain settings (a stack file's SETTINGS, a parsed file); unknown keys fail."""
        if not isinstance(settings, Mapping):
            raise ConfigError([f"the configuration must be a mapping of field to value (got {settings!r})"],
                              source)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        problems = [f"{key!r} is not a configuration field; known fields are {', '.join(fields)} "
                    f"(got {settings[key]!r})" for key in settings if key not in fields]
        missing = [name for name, f in fields.items()
                   if f.default is dataclasses.MISSING and name not in settings]
        problems += [f"'{name}' is required (got nothing)" for name in missing]
        if problems:
            raise ConfigError(problems, source)
        try:
            return cls(**settings)
        except ConfigError as exc:
            raise ConfigError(exc.problems, source or exc.source) from None

    @property
    def primary_alias(self) -> str:
        return naming.primary_alias(self.environment)

    @property
    def aliases(self) -> tuple[str, ...]:
        return (self.primary_alias, *self.additional_aliases)

    @property
    def multi_region(self) -> bool:
        """The PHI key is a multi-Region primary key: it has replicas in the DR regions."""
        return bool(self.disaster_recovery_regions)

    @property
    def termination_protection(self) -> bool:
        """Staging and production stacks cannot be deleted without first turning this off."""
        return self.environment in ("staging", "production")

    @property
    def service_key_users(self) -> tuple[ServiceKeyUser, ...]:
        """``key_use_through_services``, validated and typed."""
        return tuple(self.key_use_through_services)

    @property
    def role_arns(self) -> tuple[str, ...]:
        """Every role named in a key policy, for tooling that checks they exist."""
        named = [self.application_role_arn, *self.admin_role_arns, self.emergency_access_role_arn,
                 *self.audit_log_reader_role_arns, self.backup_role_arn,
                 *(u.role_arn for u in self.service_key_users)]
        return tuple(dict.fromkeys(a for a in named if a))
