"""The configuration of one environment: the Terraform variables, typed, immutable, validated.

Construction validates everything at once, so a bad value never reaches a builder and the person
fixing it sees every problem in one run, each as ``'field' must be ... (got value)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scrybe_kms.config import validators as v

__all__ = ["ConfigError", "EnvironmentConfig"]


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
    The rest are what an operator needs beyond them; each has a secure default.
    """

    #: dev, staging or production; names every resource and export.
    environment: str
    #: The only region the template may be deployed to (enforced by a template rule).
    aws_region: str
    #: The application's role: encrypt, decrypt, re-encrypt, generate data keys, describe. Nothing else.
    application_role_arn: str
    #: Key administrators: manage the key, never use it. At least one.
    admin_role_arns: Sequence[str]
    #: Break-glass role: full access, but only with MFA. Optional.
    emergency_access_role_arn: str | None = None
    #: Waiting period before a scheduled deletion happens (7-30 days).
    deletion_window_days: int = 30
    #: An existing SNS topic (same region) that the alarms also notify.
    alarm_topic_arn: str | None = None
    #: Addresses subscribed to the alarm topic this stack creates.
    alarm_emails: Sequence[str] = ()
    #: How long audit logs are kept, in S3 and in CloudWatch Logs (default 7 years).
    audit_log_retention_days: int = 2557
    #: Aliases beside the primary ``alias/scrybe-phi-master-key-<env>``.
    additional_aliases: Sequence[str] = ()

    # Derived in __post_init__, never passed in.
    account_id: str = field(init=False, repr=False, compare=False)
    partition: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems: list[str] = []

        def check(fn: Callable[..., Any], name: str, value: Any, *args: Any) -> Any:
            try:
                return fn(name, value, *args)
            except ValueError as exc:
                problems.append(str(exc))
                return None

        env = check(v.environment, "environment", self.environment)
        region = check(v.region, "aws_region", self.aws_region)
        app = check(v.role_arn, "application_role_arn", self.application_role_arn)

        admins = self._sequence("admin_role_arns", self.admin_role_arns, problems,
                                "a non-empty list of IAM role ARNs", allow_empty=False)
        admin_arns = [check(v.role_arn, f"admin_role_arns[{i}]", a) for i, a in enumerate(admins)]
        check(v.unique, "admin_role_arns", [a for a in admin_arns if a is not None])

        emergency = None
        if self.emergency_access_role_arn is not None:
            emergency = check(v.role_arn, "emergency_access_role_arn", self.emergency_access_role_arn)

        check(v.deletion_window, "deletion_window_days", self.deletion_window_days)
        check(v.retention_days, "audit_log_retention_days", self.audit_log_retention_days)

        topic = None
        if self.alarm_topic_arn is not None:
            topic = check(v.sns_topic_arn, "alarm_topic_arn", self.alarm_topic_arn, region)
        emails = self._sequence("alarm_emails", self.alarm_emails, problems, "a list of email addresses")
        for i, address in enumerate(emails):
            check(v.email_address, f"alarm_emails[{i}]", address)
        check(v.unique, "alarm_emails", [e for e in emails if isinstance(e, str)], str.lower)
        if self.alarm_topic_arn is None and not emails and isinstance(self.alarm_emails, (list, tuple)):
            problems.append("'alarm_emails' must name at least one address when 'alarm_topic_arn' is "
                            "not set, or the alarms reach nobody (got [])")

        aliases = self._sequence("additional_aliases", self.additional_aliases, problems,
                                 "a list of KMS alias names")
        for i, alias in enumerate(aliases):
            if check(v.alias_name, f"additional_aliases[{i}]", alias) is not None and env is not None:
                if alias == f"alias/scrybe-phi-master-key-{env}":
                    problems.append(f"'additional_aliases[{i}]' must not repeat the primary alias "
                                    f"(got {alias!r})")
        check(v.unique, "additional_aliases", [a for a in aliases if isinstance(a, str)])

        self._separation_of_duties(app, [a for a in admin_arns if a is not None], emergency, problems)
        self._one_account(app, admin_arns, emergency, topic, region, problems)

        if problems:
            raise ConfigError(problems, source=env and f"the {env} configuration")

        object.__setattr__(self, "admin_role_arns", tuple(admins))
        object.__setattr__(self, "alarm_emails", tuple(emails))
        object.__setattr__(self, "additional_aliases", tuple(aliases))
        object.__setattr__(self, "account_id", v.arn_account(self.application_role_arn))
        object.__setattr__(self, "partition", v.arn_partition(self.application_role_arn))

    @staticmethod
    def _sequence(name: str, value: Any, problems: list[str], what: str,
                  allow_empty: bool = True) -> list[Any]:
        # A bare string is a sequence too; it is always a mistake here.
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            problems.append(f"'{name}' must be {what} (got {value!r})")
            return []
        if not value and not allow_empty:
            problems.append(f"'{name}' must be {what} (got {value!r})")
        return list(value)

    @staticmethod
    def _separation_of_duties(app: str | None, admins: list[str],
                              emergency: str | None, problems: list[str]) -> None:
        """One role, one duty: whoever uses the key must not also manage it, and vice versa."""
        for i, admin in enumerate(admins):
            if app is not None and admin == app:
                problems.append(f"'admin_role_arns[{i}]' must not be the application role: the role "
                                f"that uses the key must not also manage it (got {admin!r})")
            if emergency is not None and admin == emergency:
                problems.append(f"'admin_role_arns[{i}]' must not be the emergency access role: "
                                f"break-glass access must stay MFA-only (got {admin!r})")
        if app is not None and emergency is not None and app == emergency:
            problems.append("'emergency_access_role_arn' must not be the application role: "
                            f"break-glass access must stay separate and MFA-only (got {emergency!r})")

    @staticmethod
    def _one_account(app: str | None, admins: list[str | None],
                     emergency: str | None, topic: str | None, region: str | None,
                     problems: list[str]) -> None:
        """Every ARN names the application role's account and the region's partition: the
        account the key lives in, and the partition the template deploys to."""
        named: list[tuple[str, str | None]] = [("application_role_arn", app)]
        named += [(f"admin_role_arns[{i}]", a) for i, a in enumerate(admins)]
        named += [("emergency_access_role_arn", emergency), ("alarm_topic_arn", topic)]
        partition = v.partition_of(region) if region is not None else None
        for name, arn in named:
            if arn is None:
                continue
            if partition is not None and v.arn_partition(arn) != partition:
                problems.append(f"'{name}' must be in partition {partition!r} of aws_region {region!r} "
                                f"(got {arn!r})")
            elif app is not None and v.arn_account(arn) != v.arn_account(app):
                problems.append(f"'{name}' must be in the application role's account {v.arn_account(app)}, "
                                f"the account the key lives in (got {arn!r})")

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
        return f"alias/scrybe-phi-master-key-{self.environment}"

    @property
    def aliases(self) -> tuple[str, ...]:
        return (self.primary_alias, *self.additional_aliases)

    @property
    def termination_protection(self) -> bool:
        """Staging and production stacks cannot be deleted without first turning this off."""
        return self.environment in ("staging", "production")

    @property
    def role_arns(self) -> tuple[str, ...]:
        """Every role named in the key policy, for tooling that checks they exist."""
        extra = (self.emergency_access_role_arn,) if self.emergency_access_role_arn else ()
        return (self.application_role_arn, *self.admin_role_arns, *extra)
