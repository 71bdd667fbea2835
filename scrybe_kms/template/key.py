"""KMS keys: the PHI master key the application uses, and a small key for the audit path.

A builder returns a :class:`KeyHandle`; other builders add the statements their service needs
with :meth:`KeyHandle.add_statement`, so the key policy grows with the stack and each grant
lives next to the resource that needs it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from awacs.aws import PolicyDocument, Statement
from troposphere import GetAtt, Ref, Template, kms
from troposphere.validators.kms import policytypes

from scrybe_kms.config import ConfigError, Environment, validators
from scrybe_kms.template import guards, key_statements, policies
from scrybe_kms.template.context import context
from scrybe_kms.template.key_statements import EmergencyMfa
from scrybe_kms.template.tags import standard_tags

__all__ = ["KeyHandle", "ReplicaKey", "key_aliases", "managed_key", "replica_key"]


class ReplicaKey(kms.ReplicaKey):  # type: ignore[misc]  # troposphere is untyped
    """``AWS::KMS::ReplicaKey`` whose ``KeyPolicy`` takes an awacs document like ``AWS::KMS::Key``'s
    (troposphere types it ``dict``), so builders can extend a replica's policy the same way."""

    props: ClassVar[dict[str, Any]] = {**kms.ReplicaKey.props, "KeyPolicy": (policytypes, True)}


@dataclass(frozen=True)
class KeyHandle:
    """What other builders need from a key: its ARN, its id and a way to extend its policy."""

    resource: kms.Key | kms.ReplicaKey
    policy: PolicyDocument

    @property
    def arn(self) -> GetAtt:
        return GetAtt(self.resource, "Arn")

    @property
    def key_id(self) -> Ref:
        return Ref(self.resource)

    def add_statement(self, *statements: Statement) -> None:
        policies.append_statements(self.policy, self.resource.title, statements)


def managed_key(
    template: Template,
    title: str,
    *,
    environment: Environment,
    description: str,
    admin_role_arns: Sequence[str],
    emergency_role_arn: str | None = None,
    emergency_mfa: EmergencyMfa = "session",
    deletion_window_days: int = 30,
    multi_region: bool = False,
    purpose: str,
    why: str,
) -> KeyHandle:
    """A symmetric customer-managed key with rotation on, retained on delete and replace.

    The policy starts with the administrators (management, no crypto) and the MFA-gated
    emergency role. The account root principal is deliberately *not* named: naming it would let
    any IAM policy in the account grant use of the key, and "only the named roles can decrypt
    PHI" would then depend on every IAM policy in the account. KMS's lockout check is met because
    the deploying admin role keeps ``kms:PutKeyPolicy``.
    """
    title, environment, admin_role_arns, emergency_role_arn, deletion_window_days = _checked(
        "managed_key", title, environment, admin_role_arns, emergency_role_arn, deletion_window_days)
    if not isinstance(multi_region, bool):
        raise ConfigError([f"'multi_region' must be true or false (got {multi_region!r})"], f"managed_key({title!r})")
    policy = _base_policy(title, admin_role_arns, emergency_role_arn, emergency_mfa)
    key = template.add_resource(
        kms.Key(
            title,
            Description=description,
            Enabled=True,
            EnableKeyRotation=True,
            KeySpec="SYMMETRIC_DEFAULT",
            KeyUsage="ENCRYPT_DECRYPT",
            MultiRegion=multi_region,
            PendingWindowInDays=deletion_window_days,
            KeyPolicy=policy,
            Tags=standard_tags(environment, Purpose=purpose),
            Metadata=context(why, mutable="review-required", must=[
                "never replaced or deleted by a stack operation: data encrypted under it would be lost",
                "no account-root or wildcard principal; admins never get a cryptographic action",
                "BypassPolicyLockoutSafetyCheck is never set",
            ]),
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
        )
    )
    return KeyHandle(key, policy)


def _checked(fn: str, title: str, environment: Any, admin_role_arns: Any, emergency_role_arn: Any,
             deletion_window_days: Any) -> Any:
    return guards.checked(
        f"{fn}({title!r})",
        (guards.title, "title", title),
        (guards.ENVIRONMENT, "environment", environment),
        (guards.ROLES, "admin_role_arns", admin_role_arns),
        (guards.optional(guards.ROLE), "emergency_role_arn", emergency_role_arn),
        (guards.DELETION_WINDOW, "deletion_window_days", deletion_window_days),
    )


def _base_policy(title: str, admin_role_arns: Sequence[str], emergency_role_arn: str | None,
                 emergency_mfa: EmergencyMfa) -> PolicyDocument:
    """Administrators (management, never use), the lockout-bypass deny, and break-glass: the
    statements every key here starts with, primary or replica."""
    statements = [key_statements.allow_key_administration("KeyAdministratorsManageButNeverUse", admin_role_arns),
                  key_statements.deny_lockout_bypass()]
    if emergency_role_arn:
        statements.append(key_statements.allow_emergency_access(emergency_role_arn, emergency_mfa))
    return policies.policy_document(statements, policy_id=f"{title}Policy")


def replica_key(
    template: Template,
    title: str,
    *,
    environment: Environment,
    primary_key_arn: Any,
    description: str,
    admin_role_arns: Sequence[str],
    emergency_role_arn: str | None = None,
    emergency_mfa: EmergencyMfa = "session",
    deletion_window_days: int = 30,
    purpose: str,
    why: str,
) -> KeyHandle:
    """A replica of a multi-Region primary key in this stack's region: the same key material and
    key ID, so whatever the primary encrypted, the replica decrypts (decision D47). Its policy is
    its own and starts like the primary's; rotation follows the primary's. Retained on delete and
    replace."""
    title, environment, admin_role_arns, emergency_role_arn, deletion_window_days = _checked(
        "replica_key", title, environment, admin_role_arns, emergency_role_arn, deletion_window_days)
    policy = _base_policy(title, admin_role_arns, emergency_role_arn, emergency_mfa)
    key = template.add_resource(ReplicaKey(
        title,
        PrimaryKeyArn=primary_key_arn,
        Description=description,
        Enabled=True,
        PendingWindowInDays=deletion_window_days,
        KeyPolicy=policy,
        Tags=standard_tags(environment, Purpose=purpose),
        Metadata=context(why, mutable="review-required", must=[
            "never replaced or deleted by a stack operation: it is the only key in this region that decrypts "
            "the PHI and audit-log copies here",
            "no account-root or wildcard principal; admins never get a cryptographic action",
        ]),
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
    ))
    return KeyHandle(key, policy)


def _alias_list(field: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"'{field}' must be a non-empty list of KMS alias names (got {value!r})")
    names = tuple(guards.ALIAS(f"{field}[{i}]", alias) for i, alias in enumerate(value))
    validators.unique(field, names)
    return names


def _alias_title(prefix: str, alias: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", alias.removeprefix("alias/"))
    return prefix + "".join(w[:1].upper() + w[1:] for w in words if w)


def key_aliases(template: Template, key: KeyHandle, aliases: Sequence[str],
                *, title_prefix: str = "Alias") -> list[kms.Alias]:
    """One ``AWS::KMS::Alias`` per name; logical IDs come from the name, so order does not matter.
    Two names that differ only in punctuation would get one logical ID: refused, like a bare string."""
    [aliases] = guards.checked("key_aliases", (_alias_list, "aliases", aliases))
    titles = [_alias_title(title_prefix, alias) for alias in aliases]
    clash = next((a for a, t in zip(aliases, titles, strict=True) if titles.count(t) > 1), None)
    if clash is not None:
        raise ConfigError([f"'aliases' must differ in more than punctuation: they share the logical ID "
                           f"{_alias_title(title_prefix, clash)!r} (got {list(aliases)!r})"], "key_aliases")
    created = []
    for alias in aliases:
        created.append(template.add_resource(kms.Alias(
            _alias_title(title_prefix, alias),
            AliasName=alias,
            TargetKeyId=key.key_id,
            Metadata=context("Stable name applications and other stacks use for the key; "
                             "the application's AWS_KMS_KEY_ALIAS.",
                             must=["always targets this stack's key"]),
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
        )))
    return created
