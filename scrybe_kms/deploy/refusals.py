"""Reading a change set before it runs, and refusing the ones that would lose the key.

Two independent checks, because neither is enough alone:

1. What CloudFormation's change set says (``Action: Remove``, ``Replacement: True/Conditional``).
2. A local comparison of the deployed and the new template: a protected resource removed or
   renamed, its type changed, its ``DeletionPolicy`` or ``UpdateReplacePolicy: Retain`` dropped, a create-only property
   changed (from the resource provider schemas cfn-lint ships), or one of the KMS key properties
   AWS refuses to change on an existing key (KeySpec, KeyUsage, Origin, MultiRegion). Emulators
   and even CloudFormation report some of these as a plain ``Modify``.

The local check fails closed: if cfn-lint's schema for a protected resource's type cannot be read,
the deploy is refused rather than run without the comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from scrybe_kms.deploy.errors import DeployError
from scrybe_kms.derived.stack_policy import control_resources, protected_resources

__all__ = ["PROTECTED_TYPES", "Change", "SchemaUnavailable", "changes_from", "format_plan", "local_problems",
           "refusals"]

#: AWS::KMS::Key properties an update cannot change: "the update request fails, regardless of the
#: value of the UpdateReplacePolicy attribute" (CloudFormation resource reference).
KMS_KEY_IMMUTABLE = ("KeySpec", "KeyUsage", "Origin", "MultiRegion")

#: The attributes that keep a resource when CloudFormation deletes it from the stack
#: (``DeletionPolicy``) or replaces it (``UpdateReplacePolicy``: the old physical resource is kept).
RETAIN_POLICIES = ("DeletionPolicy", "UpdateReplacePolicy")

#: Types whose create-only properties must be known: without cfn-lint's schema for one of these,
#: even "cfn-lint does not know this type" refuses the deploy.
PROTECTED_TYPES = frozenset({"AWS::KMS::Key", "AWS::KMS::ReplicaKey", "AWS::KMS::Alias", "AWS::S3::Bucket",
                             "AWS::Logs::LogGroup"})


class SchemaUnavailable(Exception):
    """cfn-lint could not say which properties of a type are create-only."""


@dataclass(frozen=True)
class Change:
    action: str
    logical_id: str
    resource_type: str
    replacement: str = ""

    @property
    def verb(self) -> str:
        if self.action == "Modify" and self.replacement in ("True", "Conditional"):
            return "replace" if self.replacement == "True" else "replace?"
        return {"Add": "add", "Modify": "modify", "Remove": "remove"}.get(self.action, self.action.lower())


def changes_from(described: Iterable[Mapping[str, Any]]) -> list[Change]:
    """Changes from ``describe_change_set()['Changes']`` pages."""
    found = []
    for change in described:
        rc = change.get("ResourceChange", {})
        found.append(Change(rc.get("Action", "?"), rc.get("LogicalResourceId", "?"),
                            rc.get("ResourceType", "?"), str(rc.get("Replacement", "") or "")))
    return sorted(found, key=lambda c: c.logical_id)


def format_plan(changes: Iterable[Change]) -> str:
    rows = list(changes)
    if not rows:
        return "plan: no changes"
    width = max(len(c.logical_id) for c in rows)
    lines = [f"plan: {len(rows)} resource change(s)"]
    lines += [f"  {c.verb:<9} {c.logical_id:<{width}}  {c.resource_type}" for c in rows]
    return "\n".join(lines)


@cache
def _create_only(resource_type: str, region: str) -> tuple[str, ...]:
    """Top-level create-only properties of ``resource_type``, from cfn-lint's provider schemas.

    Raises ``SchemaUnavailable`` unless the schema was read and has the expected shape. Only
    cfn-lint's own "not found" for a type it does not know (not a failed load, which it reports
    with the same exception chained to the cause) means "nothing to compare", and never for
    ``PROTECTED_TYPES``."""
    try:
        from cfnlint.schema import PROVIDER_SCHEMA_MANAGER, ResourceNotFoundError
    except ImportError as exc:
        raise SchemaUnavailable(f"cfn-lint's schemas cannot be imported ({exc})") from exc
    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    except ResourceNotFoundError as exc:
        if resource_type in PROTECTED_TYPES or exc.__cause__ is not None:
            raise SchemaUnavailable(f"cfn-lint has no schema for {resource_type} in {region} ({exc})") from exc
        return ()
    except Exception as exc:  # any failure of cfn-lint's API, e.g. after an upgrade changed it
        raise SchemaUnavailable(f"cfn-lint's schema for {resource_type} could not be loaded "
                                f"({type(exc).__name__}: {exc})") from exc
    paths = schema.get("createOnlyProperties", []) if isinstance(schema, Mapping) else None
    if (not isinstance(schema, Mapping) or schema.get("typeName") != resource_type or not isinstance(paths, list)
            or not all(isinstance(p, str) for p in paths)):
        raise SchemaUnavailable(f"cfn-lint's schema for {resource_type} does not have the expected shape")
    return tuple(p.removeprefix("/properties/") for p in paths if p.count("/") == 2)


def local_problems(old: Mapping[str, Any], new: Mapping[str, Any], region: str) -> dict[str, str]:
    """``{logical id: why}`` for protected resources the new template would replace or lose."""
    old_resources, new_resources = old.get("Resources", {}), new.get("Resources", {})
    problems: dict[str, str] = {}
    for title, why in protected_resources(old).items():
        before = old_resources[title]
        after = new_resources.get(title)
        if after is None:
            problems[title] = f"it would be removed from the stack ({why})"
            continue
        if after.get("Type") != before.get("Type"):
            problems[title] = f"its type would change, which replaces it ({why})"
            continue
        dropped = [policy for policy in RETAIN_POLICIES
                   if before.get(policy) == "Retain" and after.get(policy) != "Retain"]
        if dropped:
            problems[title] = f"its {' and '.join(dropped)} would no longer be Retain ({why})"
            continue
        props_before, props_after = before.get("Properties", {}), after.get("Properties", {})
        kind = before["Type"]
        try:
            create_only = _create_only(kind, region)
        except SchemaUnavailable as exc:
            raise DeployError(f"cannot check whether {title} ({kind}) would be replaced: {exc}; refusing") from None
        for prop in create_only:
            if props_before.get(prop) != props_after.get(prop):
                problems[title] = f"changing {prop} replaces it ({why})"
                break
        else:
            if kind == "AWS::KMS::Key":
                for prop in KMS_KEY_IMMUTABLE:
                    if props_before.get(prop) != props_after.get(prop):
                        problems[title] = (f"{prop} cannot change on an existing key; the update would fail "
                                           f"and only a new key could have it ({why}). Migration: create a new "
                                           "key (a new stack or key resource), re-encrypt the data under it "
                                           "(kms:ReEncrypt), then retire the old key")
                        break
            shorter = _lock_days(props_after) < _lock_days(props_before)
            if kind == "AWS::S3::Bucket" and shorter and _lock(props_before) == _lock(props_after):
                problems[title] = (f"its Object Lock default retention would drop from {_lock_days(props_before)} "
                                   f"to {_lock_days(props_after)} days, shorter than the lock on the versions "
                                   f"already written ({why}). Keep audit_log_retention_days at "
                                   f"{_lock_days(props_before)} or more; a shorter retention needs a new bucket")
            if kind == "AWS::S3::Bucket" and _lock(props_before) != _lock(props_after):
                problems[title] = (f"its Object Lock setting would change from {_lock(props_before)} to "
                                   f"{_lock(props_after)}; Object Lock protects only versions written after it is "
                                   f"set, and once on it cannot be turned off ({why}). Migration: deploy a new "
                                   "bucket (a new environment stack, or a new bucket name) with the lock you want, "
                                   "and keep this one, retained, for the rest of its retention")
            if kind == "AWS::KMS::Alias" and props_before.get("TargetKeyId") != props_after.get("TargetKeyId"):
                problems[title] = f"its target would change ({why})"
    return problems


def _lock_days(props: Mapping[str, Any]) -> int:
    """A locked bucket's default retention in days (0 without Object Lock)."""
    if not props.get("ObjectLockEnabled"):
        return 0
    days = props.get("ObjectLockConfiguration", {}).get("Rule", {}).get("DefaultRetention", {}).get("Days", 0)
    return days if isinstance(days, int) else 0


def _lock(props: Mapping[str, Any]) -> str:
    """A bucket's Object Lock as one word: ``none``, or its default retention mode."""
    if not props.get("ObjectLockEnabled"):
        return "none"
    rule = props.get("ObjectLockConfiguration", {}).get("Rule", {}).get("DefaultRetention", {})
    return str(rule.get("Mode", "enabled without a default retention")).lower()


#: How to do on purpose what the stack policy forbids.
OVERRIDE = ("the stack policy denies it; to do it on purpose, update with a temporary "
            "--stack-policy-during-update-body, which CloudTrail records")


def refusals(changes: Iterable[Change], old: Mapping[str, Any], new: Mapping[str, Any],
             region: str) -> list[str]:
    """One line per resource this deployment would replace or remove; empty = safe.

    Protected resources (data) are refused with why; every other resource of the deployed stack is
    a control the stack policy guards (``control_resources``), so replacing or removing it would
    only fail halfway through the update: refused here, before anything runs."""
    protected = {**protected_resources(new), **protected_resources(old)}
    controls = control_resources(old)
    reasons = dict(local_problems(old, new, region))
    for change in changes:
        if change.logical_id in reasons or change.logical_id not in {**controls, **protected}:
            continue
        why = protected.get(change.logical_id) or f"{controls[change.logical_id]}; {OVERRIDE}"
        if change.action == "Remove":
            reasons[change.logical_id] = f"the change set removes it ({why})"
        elif change.action == "Modify" and change.replacement in ("True", "Conditional"):
            reasons[change.logical_id] = f"the change set replaces it (Replacement: {change.replacement}) ({why})"
    return [f"{title}: {reason}" for title, reason in sorted(reasons.items())]
