"""Templates handed in with ``--template-file``/``--alarms-template-file`` (JSON or YAML), checked
for the shape CloudFormation needs, and a template's ``Rules`` checked against the session.

A template that is not a mapping, or whose ``Resources`` are not a mapping of typed resources, is
refused here with one line, before any AWS call (issue 13: ``5``, ``null`` or ``{"Resources": []}``
used to end in a traceback). The region and account ``Rules`` every scrybe-kms template carries
(decision D6) are evaluated locally (D44), so a template built for another region or account is
refused before a change set exists, whether or not the endpoint evaluates ``Rules``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scrybe_kms.deploy.errors import DeployError

__all__ = ["check_shape", "read_template", "rule_problems"]

#: The pseudo parameters a scrybe-kms rule compares, and what the session says they are.
_PSEUDO = ("AWS::AccountId", "AWS::Region")


def read_template(path: Path, option: str) -> dict[str, Any]:
    """The template in ``path``: JSON, or YAML with CloudFormation's short tags (cfn-flip)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DeployError(f"could not read {option} {path}: {exc}") from None
    try:
        body: Any = json.loads(text)
    except ValueError as json_error:
        body = _yaml(text, option, path, json_error)
    return check_shape(_plain(body), f"{option} {path}")


def _yaml(text: str, option: str, path: Path, json_error: ValueError) -> Any:
    try:
        from cfn_flip import load_yaml  # troposphere's own dependency
    except ImportError:  # pragma: no cover - troposphere always brings it
        raise DeployError(f"could not read {option} {path}: not JSON ({json_error})") from None
    try:
        return load_yaml(text)
    except Exception as exc:  # PyYAML's errors share no base class worth naming
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DeployError(f"could not read {option} {path}: neither JSON ({json_error}) nor YAML ({first})") from None


def _plain(node: Any) -> Any:
    """cfn-flip's ordered dicts as plain dicts and lists, so the rest compares them as JSON."""
    if isinstance(node, Mapping):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    return node


def check_shape(body: Any, source: str) -> dict[str, Any]:
    """``body`` if CloudFormation could read it as a template; else one line saying why not."""
    if not isinstance(body, Mapping):
        raise DeployError(f"{source} is not a CloudFormation template: it holds a {type(body).__name__}, "
                          "not a mapping with Resources")
    resources = body.get("Resources")
    if not isinstance(resources, Mapping) or not resources:
        raise DeployError(f"{source} is not a CloudFormation template: Resources must be a non-empty mapping")
    for title, resource in resources.items():
        if not isinstance(resource, Mapping) or not isinstance(resource.get("Type"), str):
            raise DeployError(f"{source} is not a CloudFormation template: resource {title} has no Type")
        if not isinstance(resource.get("Properties", {}), Mapping):
            raise DeployError(f"{source} is not a CloudFormation template: {title}'s Properties is not a mapping")
    for section in ("Outputs", "Rules", "Metadata", "Conditions", "Parameters", "Mappings"):
        if section in body and not isinstance(body[section], Mapping):
            raise DeployError(f"{source} is not a CloudFormation template: {section} is not a mapping")
    return dict(body)


def rule_problems(template: Mapping[str, Any], region: str, account: str) -> list[str]:
    """The ``AssertDescription`` of each rule assertion that fails for this region and account.

    Only assertions of the form ``Fn::Equals [{Ref: AWS::Region|AWS::AccountId}, literal]`` (either
    order, the form scrybe-kms writes) are evaluated; any other is left to CloudFormation."""
    actual = {"AWS::AccountId": account, "AWS::Region": region}
    problems = []
    for name, rule in sorted(template.get("Rules", {}).items()):
        if not isinstance(rule, Mapping) or "RuleCondition" in rule:
            continue
        for assertion in rule.get("Assertions", []) or []:
            compared = _compared(assertion.get("Assert") if isinstance(assertion, Mapping) else None)
            if compared is not None and actual[compared[0]] != compared[1]:
                said = assertion.get("AssertDescription") or f"{compared[0]} must be {compared[1]}"
                problems.append(f"{name}: {said} (this session: {actual[compared[0]]})")
    return problems


def _compared(condition: Any) -> tuple[str, str] | None:
    if not isinstance(condition, Mapping) or set(condition) != {"Fn::Equals"}:
        return None
    pair = condition["Fn::Equals"]
    if not isinstance(pair, list) or len(pair) != 2:
        return None
    for ref, literal in (pair, pair[::-1]):
        if isinstance(ref, Mapping) and ref.get("Ref") in _PSEUDO and isinstance(literal, str):
            return str(ref["Ref"]), literal
    return None
