"""The callers an access review covers, each with the request context AWS would give it.

Every role request carries what AWS always supplies (``aws:PrincipalArn``, ``kms:CallerAccount``);
requests made through a service add ``kms:ViaService`` (and, for grants an AWS service creates,
``kms:GrantIsForAWSResource``); CloudTrail and CloudWatch Logs bring their encryption context.
"This trail" and "this log group" come from the rendered template (the trail's ``TrailName``, the
log group's ``LogGroupName``), built into ARNs the way AWS builds them, never from the naming code
that also wrote the key policy: a wrong ARN in the policy then shows up as a deny.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.config.services import via_service_endpoint

__all__ = ["KEY_ID", "Scenario", "key_arn", "log_group_arn", "resolve", "scenarios", "trail_arn", "values"]

#: A stand-in key ID: the real one exists only after deployment.
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_ACCOUNT = "210987654321"
MFA = "aws:MultiFactorAuthPresent"
#: The service-linked roles of the compliance tools, as their documented path and name (D15).
SERVICE_LINKED = {
    "AWS Config": "aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig",
    "IAM Access Analyzer": "aws-service-role/access-analyzer.amazonaws.com/AWSServiceRoleForAccessAnalyzer",
}


@dataclass(frozen=True)
class Scenario:
    """A caller and the request context it brings."""

    label: str
    #: "role", "service" or "anonymous"
    kind: str
    principal: str
    context: Mapping[str, str] = field(default_factory=dict)


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


def values(cfg: EnvironmentConfig, key_title: str) -> dict[str, str]:
    return {
        "AWS::Partition": cfg.partition,
        "AWS::Region": cfg.aws_region,
        "AWS::AccountId": cfg.account_id,
        f"{key_title}.Arn": key_arn(cfg),
        key_title: KEY_ID,
    }


def key_arn(cfg: EnvironmentConfig) -> str:
    return f"arn:{cfg.partition}:kms:{cfg.aws_region}:{cfg.account_id}:key/{KEY_ID}"


def _only(template: Mapping[str, Any], resource_type: str) -> tuple[str, Mapping[str, Any]]:
    found = [(title, r) for title, r in template["Resources"].items() if r["Type"] == resource_type]
    if len(found) != 1:
        raise ValueError(f"expected exactly one {resource_type} in the template, found {len(found)}")
    return found[0]


def _name(template: Mapping[str, Any], cfg: EnvironmentConfig, resource_type: str, prop: str) -> str:
    title, resource = _only(template, resource_type)
    name = resolve(resource.get("Properties", {}).get(prop), values(cfg, "PhiKey"))
    if not isinstance(name, str):
        raise ValueError(f"{title} ({resource_type}) needs a fixed {prop} for the access review, got {name!r}")
    return name


def trail_arn(template: Mapping[str, Any], cfg: EnvironmentConfig) -> str:
    """The trail's ARN as CloudTrail forms it, from the rendered ``TrailName``."""
    name = _name(template, cfg, "AWS::CloudTrail::Trail", "TrailName")
    return f"arn:{cfg.partition}:cloudtrail:{cfg.aws_region}:{cfg.account_id}:trail/{name}"


def log_group_arn(template: Mapping[str, Any], cfg: EnvironmentConfig) -> str:
    """The log group's ARN as CloudWatch Logs puts it in the encryption context (no ``:*``)."""
    name = _name(template, cfg, "AWS::Logs::LogGroup", "LogGroupName")
    return f"arn:{cfg.partition}:logs:{cfg.aws_region}:{cfg.account_id}:log-group:{name}"


def _role(label: str, arn: str, **context: str) -> Scenario:
    """A role's request: AWS always supplies the caller's ARN and (to KMS) its account."""
    return Scenario(label, "role", arn, {"aws:PrincipalArn": arn, "kms:CallerAccount": arn.split(":")[4], **context})


def _name_of(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _through_services(cfg: EnvironmentConfig) -> list[Scenario]:
    """Each role that uses the key through services: through each service (a grant for an AWS
    resource, as the service makes it), a grant through it that is not for an AWS resource, and a
    direct call."""
    found = []
    for user in cfg.service_key_users:
        name = _name_of(user.role_arn)
        for service in user.services:
            via = via_service_endpoint(service, cfg.aws_region)
            found.append(_role(f"{name} through {service}", user.role_arn, **{
                "kms:ViaService": via, "kms:GrantIsForAWSResource": "true"}))
        first = via_service_endpoint(user.services[0], cfg.aws_region)
        found.append(_role(f"{name} through {user.services[0]}, grant not for an AWS resource", user.role_arn,
                           **{"kms:ViaService": first, "kms:GrantIsForAWSResource": "false"}))
        found.append(_role(f"{name} directly", user.role_arn))
    return found


def _readers(cfg: EnvironmentConfig, trail: str) -> list[Scenario]:
    found = []
    s3 = via_service_endpoint("s3", cfg.aws_region)
    for arn in cfg.audit_log_reader_role_arns:
        name = _name_of(arn)
        found += [
            _role(f"{name} reading a CloudTrail log file through S3", arn, **{
                "kms:ViaService": s3, "kms:EncryptionContext:aws:cloudtrail:arn": trail}),
            _role(f"{name} through S3, not a CloudTrail log file", arn, **{"kms:ViaService": s3}),
            _role(f"{name} directly, CloudTrail context", arn, **{"kms:EncryptionContext:aws:cloudtrail:arn": trail}),
        ]
    if cfg.backup_role_arn:
        name = _name_of(cfg.backup_role_arn)
        found += [
            _role(f"{name} through backup", cfg.backup_role_arn, **{
                "kms:ViaService": via_service_endpoint("backup", cfg.aws_region), "kms:GrantIsForAWSResource": "true"}),
            _role(f"{name} directly", cfg.backup_role_arn),
        ]
    return found


def scenarios(cfg: EnvironmentConfig, template: Mapping[str, Any] | None = None) -> list[Scenario]:
    """Every caller the access review covers, for one environment (``template``: the rendered
    template as a dict; rendered from ``cfg`` when not given)."""
    if template is None:
        from scrybe_kms.template import render  # only when the caller has no rendered template

        template = json.loads(render(cfg))
    p, acct, region = cfg.partition, cfg.account_id, cfg.aws_region
    trail, log_group = trail_arn(template, cfg), log_group_arn(template, cfg)
    other_trail = trail.rsplit("/", 1)[0] + "/someone-elses-trail"
    other_group = log_group.split(":log-group:")[0] + ":log-group:/someone/else"
    found = [_role("application role", cfg.application_role_arn)]
    found += [_role(f"admin role {_name_of(arn)}", arn) for arn in cfg.admin_role_arns]
    if cfg.emergency_access_role_arn and cfg.emergency_access_mfa == "session":
        found += [_role("emergency role with MFA", cfg.emergency_access_role_arn, **{MFA: "true"}),
                  _role("emergency role without MFA", cfg.emergency_access_role_arn, **{MFA: "false"})]
    elif cfg.emergency_access_role_arn:
        found += [_role("emergency role (federated; MFA at the identity provider)", cfg.emergency_access_role_arn)]
    found += _through_services(cfg) + _readers(cfg, trail)
    found += [_role(f"{tool} (service-linked role)", f"arn:{p}:iam::{acct}:role/{path}")
              for tool, path in SERVICE_LINKED.items()]
    found += [
        _role("other role, same account (IAM kms:*)", f"arn:{p}:iam::{acct}:role/some-other-role"),
        _role("role in another account (IAM kms:*)", f"arn:{p}:iam::{OTHER_ACCOUNT}:role/outsider"),
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
