"""The stack policy: what no stack update may replace or delete.

Derived from the template itself, so it cannot drift from it: every resource the template
retains (``DeletionPolicy: Retain``) is protected against ``Update:Replace`` and
``Update:Delete``; key aliases are protected against every update, because changing an alias's
target would silently point the application at another key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["protected_resources", "render_stack_policy", "stack_policy"]


def protected_resources(template: Mapping[str, Any]) -> dict[str, str]:
    """``{logical id: why it is protected}`` for a rendered template."""
    protected = {}
    for title, resource in sorted(template.get("Resources", {}).items()):
        kind = resource.get("Type", "")
        if kind == "AWS::KMS::Alias":
            protected[title] = "a key alias: retargeting or removing it moves the application to another key"
        elif resource.get("DeletionPolicy") == "Retain":
            what = {"AWS::KMS::Key": "a KMS key: replacing or deleting it loses every record encrypted under it",
                    "AWS::S3::Bucket": "an audit-log bucket: HIPAA audit evidence",
                    "AWS::Logs::LogGroup": "the audit log group: HIPAA audit evidence"}.get(kind, "retained")
            protected[title] = what
    return protected


def stack_policy(template: Mapping[str, Any]) -> dict[str, Any]:
    protected = protected_resources(template)
    aliases = [t for t in protected if template["Resources"][t]["Type"] == "AWS::KMS::Alias"]
    others = [t for t in protected if t not in aliases]
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Principal": "*", "Action": "Update:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": ["Update:Replace", "Update:Delete"],
         "Resource": [f"LogicalResourceId/{t}" for t in others]},
    ]
    if aliases:
        statements.append({"Effect": "Deny", "Principal": "*", "Action": "Update:*",
                           "Resource": [f"LogicalResourceId/{t}" for t in aliases]})
    return {"Statement": statements}


def render_stack_policy(template: Mapping[str, Any]) -> str:
    return json.dumps(stack_policy(template), indent=1, sort_keys=True) + "\n"
