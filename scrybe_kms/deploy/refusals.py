"""Reading a change set before it runs, and refusing the ones that would lose the key.

Two independent checks, because neither is enough alone:

1. What CloudFormation's change set says (``Action: Remove``, ``Replacement: True/Conditional``).
2. A local comparison of the deployed and the new template: a protected resource removed or
   renamed, its type changed, its ``DeletionPolicy: Retain`` dropped, a create-only property
   changed (from the resource provider schemas cfn-lint ships), or one of the KMS key properties
   AWS refuses to change on an existing key (KeySpec, KeyUsage, Origin, MultiRegion). Emulators
   and even CloudFormation report some of these as a plain ``Modify``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from scrybe_kms.derived.stack_policy import protected_resources

__all__ = ["Change", "changes_from", "format_plan", "local_problems", "refusals"]

#: AWS::KMS::Key properties an update cannot change: "the update request fails, regardless of the
#: value of the UpdateReplacePolicy attribute" (CloudFormation resource reference).
KMS_KEY_IMMUTABLE = ("KeySpec", "KeyUsage", "Origin", "MultiRegion")


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
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema
    except Exception:  # an unknown type: nothing to compare
        return ()
    return tuple(p.removeprefix("/properties/") for p in schema.get("createOnlyProperties", [])
                 if p.count("/") == 2)


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
        if after.get("DeletionPolicy") != before.get("DeletionPolicy") and before.get("DeletionPolicy") == "Retain":
            problems[title] = f"its DeletionPolicy would no longer be Retain ({why})"
            continue
        props_before, props_after = before.get("Properties", {}), after.get("Properties", {})
        kind = before["Type"]
        for prop in _create_only(kind, region):
            if props_before.get(prop) != props_after.get(prop):
                problems[title] = f"changing {prop} replaces it ({why})"
                break
        else:
            if kind == "AWS::KMS::Key":
                for prop in KMS_KEY_IMMUTABLE:
                    if props_before.get(prop) != props_after.get(prop):
                        problems[title] = (f"{prop} cannot change on an existing key; the update would fail "
                                           f"and only a new key could have it ({why})")
                        break
            if kind == "AWS::KMS::Alias" and props_before.get("TargetKeyId") != props_after.get("TargetKeyId"):
                problems[title] = f"its target would change ({why})"
    return problems


def refusals(changes: Iterable[Change], old: Mapping[str, Any], new: Mapping[str, Any],
             region: str) -> list[str]:
    """One line per protected resource this deployment would replace or remove; empty = safe."""
    protected = {**protected_resources(new), **protected_resources(old)}
    reasons = dict(local_problems(old, new, region))
    for change in changes:
        if change.logical_id not in protected or change.logical_id in reasons:
            continue
        why = protected[change.logical_id]
        if change.action == "Remove":
            reasons[change.logical_id] = f"the change set removes it ({why})"
        elif change.action == "Modify" and change.replacement in ("True", "Conditional"):
            reasons[change.logical_id] = f"the change set replaces it (Replacement: {change.replacement}) ({why})"
    return [f"{title}: {reason}" for title, reason in sorted(reasons.items())]
