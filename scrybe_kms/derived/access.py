"""Who can do what with the keys, evaluated the way AWS evaluates a key policy.

The rendered key policy (intrinsic functions resolved for the configured account and region) is
evaluated with principalmapper: ``local_check_authorization_full`` for IAM roles (explicit deny
wins, conditions honoured, wildcard actions expanded; for KMS the key policy must name the
principal or delegate to the account), and its ``resource_policy_authorization`` for service
principals and anonymous callers, which principalmapper does not model as IAM nodes.

Each role is given an IAM policy allowing ``kms:*`` on ``*``, the worst case: the result then
shows what the key policy alone permits, which is the point of leaving the account root out.
The same evaluation feeds the tests and ``out/<env>.access.md``.
"""

from __future__ import annotations

import collections
import collections.abc
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scrybe_kms.config import EnvironmentConfig, naming

__all__ = [
    "ACTIONS",
    "KEY_ID",
    "Scenario",
    "access_markdown",
    "evaluate",
    "resolve",
    "scenarios",
]

#: The actions every matrix evaluates, in display order.
ACTIONS: tuple[str, ...] = (
    "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey", "kms:CreateGrant", "kms:PutKeyPolicy",
    "kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:DisableKeyRotation",
    "kms:TagResource",
)
#: Operations whose requests carry an encryption context; KMS supplies no
#: ``kms:EncryptionContext:*`` key to any other (DescribeKey, management), so a condition on it
#: can never match them.
ENCRYPTION_CONTEXT_ACTIONS = frozenset({
    "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext", "kms:GenerateDataKeyPair", "kms:GenerateDataKeyPairWithoutPlaintext",
})
#: A stand-in key ID: the real one exists only after deployment.
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_ACCOUNT = "210987654321"


@dataclass(frozen=True)
class Scenario:
    """A caller and the request context it brings."""

    label: str
    #: "role", "service" or "anonymous"
    kind: str
    principal: str
    context: Mapping[str, str] = field(default_factory=dict)


def _principalmapper() -> Any:
    # principalmapper 1.1.5 still imports collections.Mapping, removed in Python 3.10.
    for name in ("Mapping", "MutableMapping"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
    import principalmapper.common as common
    import principalmapper.querying.local_policy_simulation as simulation
    import principalmapper.querying.query_interface as query

    return common, simulation, query


def resolve(node: Any, values: Mapping[str, str]) -> Any:
    """Replace Ref, Fn::GetAtt and Fn::Sub with concrete strings, for evaluation."""
    if isinstance(node, list):
        return [resolve(item, values) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"}:
        return values[node["Ref"]]
    if set(node) == {"Fn::GetAtt"}:
        return values[".".join(node["Fn::GetAtt"])]
    if set(node) == {"Fn::Sub"}:
        text, local = (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
        scope = {**values, **{k: resolve(v, values) for k, v in local.items()}}
        return re.sub(r"\$\{([^}]+)\}", lambda m: scope[m.group(1)], text)
    return {key: resolve(value, values) for key, value in node.items()}


def _values(cfg: EnvironmentConfig, key_title: str) -> dict[str, str]:
    return {
        "AWS::Partition": cfg.partition,
        "AWS::Region": cfg.aws_region,
        "AWS::AccountId": cfg.account_id,
        f"{key_title}.Arn": key_arn(cfg),
        key_title: KEY_ID,
    }


def key_arn(cfg: EnvironmentConfig) -> str:
    return f"arn:{cfg.partition}:kms:{cfg.aws_region}:{cfg.account_id}:key/{KEY_ID}"


def scenarios(cfg: EnvironmentConfig) -> list[Scenario]:
    """Every caller the access review covers, for one environment."""
    p, acct, region = cfg.partition, cfg.account_id, cfg.aws_region
    pseudo = _values(cfg, "PhiKey")
    # The same ARNs the template builds, resolved: the evaluation cannot drift from naming.py.
    trail = resolve({"Fn::Sub": naming.trail_arn_sub(cfg.environment)}, pseudo)
    other_trail = trail.rsplit("/", 1)[0] + "/someone-elses-trail"
    log_group = resolve({"Fn::Sub": naming.log_group_arn_sub(cfg.environment)}, pseudo)
    other_group = log_group.split(":log-group:")[0] + ":log-group:/someone/else"
    found = [Scenario("application role", "role", cfg.application_role_arn)]
    found += [Scenario(f"admin role {arn.split('/')[-1]}", "role", arn) for arn in cfg.admin_role_arns]
    if cfg.emergency_access_role_arn:
        found += [
            Scenario("emergency role with MFA", "role", cfg.emergency_access_role_arn,
                     {"aws:MultiFactorAuthPresent": "true"}),
            Scenario("emergency role without MFA", "role", cfg.emergency_access_role_arn,
                     {"aws:MultiFactorAuthPresent": "false"}),
        ]
    found += [
        Scenario("other role, same account (IAM kms:*)", "role", f"arn:{p}:iam::{acct}:role/some-other-role"),
        Scenario("role in another account (IAM kms:*)", "role", f"arn:{p}:iam::{OTHER_ACCOUNT}:role/outsider"),
        Scenario("anonymous", "anonymous", "*"),
        Scenario("CloudTrail, this trail", "service", "cloudtrail.amazonaws.com",
                 {"aws:SourceArn": trail, "kms:EncryptionContext:aws:cloudtrail:arn": trail}),
        Scenario("CloudTrail, another trail", "service", "cloudtrail.amazonaws.com",
                 {"aws:SourceArn": other_trail, "kms:EncryptionContext:aws:cloudtrail:arn": other_trail}),
        Scenario("CloudWatch Logs, this log group", "service", f"logs.{region}.amazonaws.com",
                 {"kms:EncryptionContext:aws:logs:arn": log_group}),
        Scenario("CloudWatch Logs, another log group", "service", f"logs.{region}.amazonaws.com",
                 {"kms:EncryptionContext:aws:logs:arn": other_group}),
        Scenario("CloudWatch alarms (topic publish)", "service", "cloudwatch.amazonaws.com"),
        Scenario("EventBridge (topic publish)", "service", "events.amazonaws.com"),
    ]
    return found


def evaluate(template: Mapping[str, Any], cfg: EnvironmentConfig,
             key_title: str = "PhiKey") -> dict[str, dict[str, bool]]:
    """``{scenario label: {action: allowed}}`` for one key of a rendered template."""
    common, simulation, query = _principalmapper()
    policy = resolve(template["Resources"][key_title]["Properties"]["KeyPolicy"], _values(cfg, key_title))
    resource = key_arn(cfg)
    everything = common.Policy(f"arn:{cfg.partition}:iam::aws:policy/kms-everything", "kms-everything",
                               {"Version": "2012-10-17",
                                "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]})
    grid: dict[str, dict[str, bool]] = {}
    trust = {"Version": "2012-10-17", "Statement": []}
    for number, scenario in enumerate(scenarios(cfg)):
        row = {}
        node = common.Node(scenario.principal, f"AROAEXAMPLE{number:09d}", [everything], [], trust, None, 0,
                           False, False, None, False, None) if scenario.kind == "role" else None
        for action in ACTIONS:
            context = {k: v for k, v in scenario.context.items()
                       if action in ENCRYPTION_CONTEXT_ACTIONS or not k.startswith("kms:EncryptionContext:")}
            if node is not None:
                allowed = query.local_check_authorization_full(
                    node, action, resource, context, policy, cfg.account_id, None, None)
            else:
                # A name no Service principal has, so only Principal "*" statements match anonymous.
                caller = scenario.principal if scenario.kind == "service" else "anonymous.invalid"
                result = simulation.resource_policy_authorization(
                    caller, cfg.account_id, policy, action, resource, context)
                allowed = result is simulation.ResourcePolicyEvalResult.SERVICE_MATCH
            row[action] = bool(allowed)
        grid[scenario.label] = row
    return grid


def _cells(grid: dict[str, dict[str, bool]]) -> list[tuple[str, list[str]]]:
    """Rows for people: the two emergency rows fold into one whose cells say 'MFA only'."""
    rows: list[tuple[str, list[str]]] = []
    labels = list(grid)
    for label in labels:
        if label == "emergency role without MFA":
            continue
        if label == "emergency role with MFA":
            without = grid["emergency role without MFA"]
            rows.append(("emergency role", [
                ("MFA only" if grid[label][a] and not without[a] else "allow" if without[a] else "deny")
                for a in ACTIONS]))
            continue
        rows.append((label, ["allow" if grid[label][a] else "deny" for a in ACTIONS]))
    return rows


def access_markdown(template: Mapping[str, Any], cfg: EnvironmentConfig) -> str:
    """``out/<env>.access.md``: both keys' matrices, generated from :func:`evaluate`."""
    lines = [
        f"# Key access matrix: {cfg.environment}",
        "",
        "Generated by `scrybe-kms build` from the rendered template by evaluating each key policy",
        "with principalmapper (explicit deny wins, conditions honoured, wildcards expanded). Do not edit.",
        "Every role is assumed to hold an IAM policy allowing `kms:*` on `*`: the cells show what the",
        "key policy alone permits. Service rows use the request context shown in their label.",
        "",
    ]
    for title, heading in (("PhiKey", "PHI master key"), ("AuditKey", "Audit-path key")):
        grid = evaluate(template, cfg, title)
        lines += [f"## {heading} (`{title}`)", "",
                  "| principal | " + " | ".join(a.removeprefix("kms:") for a in ACTIONS) + " |",
                  "| --- |" + " --- |" * len(ACTIONS)]
        lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in _cells(grid)]
        lines.append("")
    lines += ["Principals:", ""]
    lines += [f"- {s.label}: `{s.principal}`" + (f" with `{json.dumps(dict(s.context), sort_keys=True)}`"
                                                   if s.context else "") for s in scenarios(cfg)]
    return "\n".join(lines) + "\n"
