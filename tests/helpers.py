"""Small readers for rendered templates, shared by the tests."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from scrybe_kms.config import EnvironmentConfig

ROOT = Path(__file__).resolve().parents[1]
STACKS = ROOT / "stacks"
#: Production's stack file without disaster recovery, for the one-region deploy-mechanics tests.
SINGLE_REGION_STACKS = ROOT / "tests" / "support" / "single_region"
OUT = ROOT / "out"

VALID: dict[str, Any] = {
    "environment": "production",
    "aws_region": "us-west-2",
    "application_role_arn": "arn:aws:iam::123456789012:role/app",
    "admin_role_arns": ["arn:aws:iam::123456789012:role/admin-a", "arn:aws:iam::123456789012:role/admin-b"],
    "emergency_access_role_arn": "arn:aws:iam::123456789012:role/breakglass",
    "alarm_emails": ["oncall@example.com"],
}


def settings(**changes: Any) -> dict[str, Any]:
    """VALID with some fields changed; a value of ``...`` removes the field."""
    result = copy.deepcopy(VALID)
    for key, value in changes.items():
        if value is ...:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def config(**changes: Any) -> EnvironmentConfig:
    return EnvironmentConfig.from_mapping(settings(**changes))


def resources_of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def statements(policy: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Statements by Sid; every statement must have a unique one."""
    found: dict[str, dict[str, Any]] = {}
    for statement in policy["Statement"]:
        assert statement["Sid"] not in found, f"duplicate Sid {statement['Sid']}"
        found[statement["Sid"]] = statement
    return found


def refs(node: Any) -> set[str]:
    """Every logical ID a fragment refers to, through Ref, GetAtt, Sub or DependsOn."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text, variables = (value[0], value[1]) if isinstance(value, list) else (value, {})
                named = {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                found |= (named - set(variables)) | refs(variables)
            elif key == "DependsOn":
                found |= set([value] if isinstance(value, str) else value)
            else:
                found |= refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= refs(item)
    return {r for r in found if not r.startswith("AWS::")}

