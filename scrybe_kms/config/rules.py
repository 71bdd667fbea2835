"""The rules one configuration must satisfy, run all at once.

:func:`check` reads the raw values, runs every single-field validator and every cross-field rule
(separation of duties, one account and partition), and returns either all the problems or the
normalised values (tuples instead of lists). It never stops at the first problem: the person
fixing a stack file sees everything in one run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scrybe_kms.config import naming
from scrybe_kms.config import validators as v
from scrybe_kms.config.services import SERVICES

__all__ = ["EMERGENCY_MFA_MODES", "OBJECT_LOCK_MODES", "ServiceKeyUser", "check"]

EMERGENCY_MFA_MODES = ("session", "identity-provider")
OBJECT_LOCK_MODES = ("compliance", "governance")


@dataclass(frozen=True)
class ServiceKeyUser:
    """A role that uses the key only through AWS services (``kms:ViaService``)."""

    role_arn: str
    services: tuple[str, ...]


@dataclass
class _Checker:
    raw: Mapping[str, Any]
    problems: list[str] = field(default_factory=list)

    def run(self, fn: Callable[..., Any], name: str, value: Any, *args: Any) -> Any:
        try:
            return fn(name, value, *args)
        except ValueError as exc:
            self.problems.append(str(exc))
            return None

    def sequence(self, name: str, what: str, allow_empty: bool = True) -> list[Any]:
        value = self.raw[name]
        # A bare string is a sequence too; it is always a mistake here.
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or (not value and not allow_empty):
            self.problems.append(f"'{name}' must be {what} (got {value!r})")
            return []
        return list(value)

    def roles(self, name: str, allow_empty: bool = True) -> list[str | None]:
        what = "a list of IAM role ARNs" if allow_empty else "a non-empty list of IAM role ARNs"
        found = [self.run(v.role_arn, f"{name}[{i}]", a) for i, a in enumerate(self.sequence(name, what, allow_empty))]
        self.run(v.unique, name, [a for a in found if a is not None])
        return found

    def optional_role(self, name: str) -> str | None:
        return None if self.raw[name] is None else self.run(v.role_arn, name, self.raw[name])


def _service_users(c: _Checker) -> list[tuple[str, ServiceKeyUser | None]]:
    found: list[tuple[str, ServiceKeyUser | None]] = []
    known = ", ".join(sorted(SERVICES))
    for i, entry in enumerate(c.sequence("key_use_through_services", "a list of {'role_arn', 'services'} entries")):
        name = f"key_use_through_services[{i}]"
        if not isinstance(entry, Mapping) or set(entry) != {"role_arn", "services"}:
            c.problems.append(f"'{name}' must be a mapping with exactly 'role_arn' and 'services' (got {entry!r})")
            found.append((name, None))
            continue
        role = c.run(v.role_arn, f"{name}.role_arn", entry["role_arn"])
        services = entry["services"]
        if isinstance(services, str) or not isinstance(services, (list, tuple)) or not services:
            c.problems.append(f"'{name}.services' must be a non-empty list of service names ({known}) "
                              f"(got {services!r})")
            services = []
        ok = True
        for j, service in enumerate(services):
            if service not in SERVICES:
                c.problems.append(f"'{name}.services[{j}]' must be one of {known} (got {service!r})")
                ok = False
        before = len(c.problems)
        c.run(v.unique, f"{name}.services", [s for s in services if isinstance(s, str)])
        ok = ok and len(c.problems) == before
        found.append((name, ServiceKeyUser(role, tuple(sorted(services))) if role and ok and services else None))
    seen: set[str] = set()
    for name, user in found:
        if user is not None and user.role_arn in seen:
            c.problems.append(f"'{name}.role_arn' duplicates an earlier entry; name each role once with all "
                              f"its services (got {user.role_arn!r})")
        elif user is not None:
            seen.add(user.role_arn)
    return found


def _duties(c: _Checker, app: str | None, admins: list[str | None], emergency: str | None,
            readers: list[str | None], users: list[tuple[str, ServiceKeyUser | None]], backup: str | None) -> None:
    """One role, one duty: whoever uses the key must not also manage it, and vice versa; an
    auditor reads logs and nothing else; break-glass stays separate."""
    def clash(name: str, arn: str | None, other: str | None, why: str) -> None:
        if arn is not None and other is not None and arn == other:
            c.problems.append(f"'{name}' must not be {why} (got {arn!r})")

    for i, admin in enumerate(admins):
        clash(f"admin_role_arns[{i}]", admin, app, "the application role: the role that uses the key must not "
                                                   "also manage it")
        clash(f"admin_role_arns[{i}]", admin, emergency, "the emergency access role: break-glass access must "
                                                         "stay separate")
    clash("emergency_access_role_arn", emergency, app, "the application role: break-glass access must stay "
                                                      "separate")
    for i, reader in enumerate(readers):
        name = f"audit_log_reader_role_arns[{i}]"
        clash(name, reader, app, "the application role: an auditor reads logs and uses no PHI")
        for admin in admins:
            clash(name, reader, admin, "an admin role: whoever can rewrite the key policy must not also read "
                                       "the logs that record it")
        clash(name, reader, emergency, "the emergency access role: every use of that role raises an alarm")
    for name, user in users:
        if user is not None:
            for admin in admins:
                clash(f"{name}.role_arn", user.role_arn, admin, "an admin role: admins manage the key, never use it")
            clash(f"{name}.role_arn", user.role_arn, emergency, "the emergency access role")
    for admin in admins:
        clash("backup_role_arn", backup, admin, "an admin role: admins manage the key, never use it")


def _one_account(c: _Checker, region: str | None, named: list[tuple[str, str | None]]) -> None:
    """Every ARN names the application role's account and the region's partition: the account the
    key lives in, and the partition the template deploys to."""
    app = dict(named).get("application_role_arn")
    partition = v.partition_of(region) if region is not None else None
    for name, arn in named:
        if arn is None:
            continue
        if partition is not None and v.arn_partition(arn) != partition:
            c.problems.append(f"'{name}' must be in partition {partition!r} of aws_region {region!r} (got {arn!r})")
        elif app is not None and v.arn_account(arn) != v.arn_account(app):
            c.problems.append(f"'{name}' must be in the application role's account {v.arn_account(app)}, "
                              f"the account the key lives in (got {arn!r})")


def _dr_regions(c: _Checker, home: str | None) -> list[str]:
    """DR regions: real regions, each once, never the home region, in its partition (a replica
    key lives in the primary's partition)."""
    found = []
    for i, name in enumerate(c.sequence("disaster_recovery_regions", "a list of AWS regions")):
        field_name = f"disaster_recovery_regions[{i}]"
        if c.run(v.region, field_name, name) is None:
            continue
        if name == home:
            c.problems.append(f"'{field_name}' must differ from aws_region: a replica in the home region "
                              f"survives nothing the primary does not (got {name!r})")
        elif home is not None and v.partition_of(name) != v.partition_of(home):
            c.problems.append(f"'{field_name}' must be in partition {v.partition_of(home)!r} of aws_region "
                              f"{home!r}: multi-Region keys replicate only within a partition (got {name!r})")
        else:
            found.append(name)
    c.run(v.unique, "disaster_recovery_regions", found)
    return found


def check(raw: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """``(problems, normalised values)`` for the raw field values of one configuration."""
    c = _Checker(raw)
    env = c.run(v.environment, "environment", raw["environment"])
    region = c.run(v.region, "aws_region", raw["aws_region"])
    app = c.run(v.role_arn, "application_role_arn", raw["application_role_arn"])
    admins = c.roles("admin_role_arns", allow_empty=False)
    emergency = c.optional_role("emergency_access_role_arn")
    if raw["emergency_access_mfa"] not in EMERGENCY_MFA_MODES:
        c.problems.append(f"'emergency_access_mfa' must be one of {', '.join(EMERGENCY_MFA_MODES)} "
                          f"(got {raw['emergency_access_mfa']!r})")
    c.run(v.deletion_window, "deletion_window_days", raw["deletion_window_days"])
    c.run(v.retention_days, "audit_log_retention_days", raw["audit_log_retention_days"])
    if raw["audit_log_object_lock"] not in (None, *OBJECT_LOCK_MODES):
        c.problems.append(f"'audit_log_object_lock' must be one of {', '.join(OBJECT_LOCK_MODES)} or None "
                          f"(got {raw['audit_log_object_lock']!r})")

    dr = _dr_regions(c, region)

    topic = None if raw["alarm_topic_arn"] is None else c.run(v.sns_topic_arn, "alarm_topic_arn",
                                                                 raw["alarm_topic_arn"], region)
    emails = c.sequence("alarm_emails", "a list of email addresses")
    for i, address in enumerate(emails):
        c.run(v.email_address, f"alarm_emails[{i}]", address)
    c.run(v.unique, "alarm_emails", [e for e in emails if isinstance(e, str)], str.lower)
    if raw["alarm_topic_arn"] is None and not emails and isinstance(raw["alarm_emails"], (list, tuple)):
        c.problems.append("'alarm_emails' must name at least one address when 'alarm_topic_arn' is "
                          "not set, or the alarms reach nobody (got [])")

    aliases = c.sequence("additional_aliases", "a list of KMS alias names")
    for i, alias in enumerate(aliases):
        if c.run(v.alias_name, f"additional_aliases[{i}]", alias) is not None and env is not None \
                and alias == naming.primary_alias(env):
            c.problems.append(f"'additional_aliases[{i}]' must not repeat the primary alias (got {alias!r})")
    c.run(v.unique, "additional_aliases", [a for a in aliases if isinstance(a, str)])

    users = _service_users(c)
    app_only = c.sequence("application_role_only_via_services", "a list of service names")
    for i, service in enumerate(app_only):
        if service not in SERVICES:
            c.problems.append(f"'application_role_only_via_services[{i}]' must be one of "
                              f"{', '.join(sorted(SERVICES))} (got {service!r})")
    c.run(v.unique, "application_role_only_via_services", [s for s in app_only if isinstance(s, str)])
    readers = c.roles("audit_log_reader_role_arns")
    backup = c.optional_role("backup_role_arn")
    if not isinstance(raw["compliance_tools_read_key_metadata"], bool):
        c.problems.append("'compliance_tools_read_key_metadata' must be true or false "
                          f"(got {raw['compliance_tools_read_key_metadata']!r})")

    _duties(c, app, admins, emergency, readers, users, backup)
    named: list[tuple[str, str | None]] = [("application_role_arn", app)]
    named += [(f"admin_role_arns[{i}]", a) for i, a in enumerate(admins)]
    named += [("emergency_access_role_arn", emergency), ("alarm_topic_arn", topic), ("backup_role_arn", backup)]
    named += [(f"audit_log_reader_role_arns[{i}]", a) for i, a in enumerate(readers)]
    named += [(f"{n}.role_arn", u.role_arn) for n, u in users if u is not None]
    _one_account(c, region, named)

    return c.problems, {
        "admin_role_arns": tuple(admins),
        "alarm_emails": tuple(emails),
        "additional_aliases": tuple(aliases),
        "key_use_through_services": tuple(u for _, u in users if u is not None),
        "application_role_only_via_services": tuple(sorted(app_only)),
        "audit_log_reader_role_arns": tuple(readers),
        "disaster_recovery_regions": tuple(sorted(set(dr))),
    }
