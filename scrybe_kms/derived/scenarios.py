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

__all__ = ["KEY_ID", "Scenario", "key_arn", "log_group_arn", "replica_scenarios", "replication_role_arn", "resolve",
           "scenarios", "trail_arn", "values"]

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


def values(cfg: EnvironmentConfig, key_title: str, region: str | None = None) -> dict[str, str]:
    """What the intrinsic functions of one key's template stand for (``region``: a DR region)."""
    region = region or cfg.aws_region
    return {
        "AWS::Partition": cfg.partition,
        "AWS::Region": region,
        "AWS::AccountId": cfg.account_id,
        f"{key_title}.Arn": key_arn(cfg, region),
        key_title: key_arn(cfg, region).rsplit("/", 1)[-1],
        "PrimaryKeyArn": key_arn(cfg),
    }


def key_arn(cfg: EnvironmentConfig, region: str | None = None) -> str:
    """A stand-in ARN for the key in ``region`` (default home); a multi-Region key's ID starts ``mrk-``."""
    key_id = ("mrk-" + KEY_ID.replace("-", "")) if cfg.multi_region else KEY_ID
    return f"arn:{cfg.partition}:kms:{region or cfg.aws_region}:{cfg.account_id}:key/{key_id}"


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


def _through_services(cfg: EnvironmentConfig, region: str) -> list[Scenario]:
    """Each role that uses the key through services: through each service (a grant for an AWS
    resource, as the service makes it), a grant through it that is not for an AWS resource, and a
    direct call."""
    found = []
    for user in cfg.service_key_users:
        name = _name_of(user.role_arn)
        for service in user.services:
            via = via_service_endpoint(service, region)
            found.append(_role(f"{name} through {service}", user.role_arn, **{
                "kms:ViaService": via, "kms:GrantIsForAWSResource": "true"}))
        first = via_service_endpoint(user.services[0], region)
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
    return found + _backup(cfg, cfg.aws_region)


def _backup(cfg: EnvironmentConfig, region: str) -> list[Scenario]:
    if not cfg.backup_role_arn:
        return []
    name = _name_of(cfg.backup_role_arn)
    return [_role(f"{name} through backup", cfg.backup_role_arn, **{
                "kms:ViaService": via_service_endpoint("backup", region), "kms:GrantIsForAWSResource": "true"}),
            _role(f"{name} directly", cfg.backup_role_arn)]


def _through_s3(label: str, arn: str, region: str, bucket: str) -> list[Scenario]:
    """A role whose statement allows use only through S3 for one bucket's objects: for an object of
    that bucket, of another bucket, and directly."""
    s3 = via_service_endpoint("s3", region)
    other = bucket.rsplit(":", 1)[0] + ":someone-elses-bucket"
    return [_role(f"{label} through S3, an object of {bucket.rsplit(':', 1)[-1]}", arn, **{
                "kms:ViaService": s3, "kms:EncryptionContext:aws:s3:arn": f"{bucket}/AWSLogs/log.json.gz"}),
            _role(f"{label} through S3, another bucket's object", arn, **{
                "kms:ViaService": s3, "kms:EncryptionContext:aws:s3:arn": f"{other}/log.json.gz"}),
            _role(f"{label} directly, with that object's context", arn, **{
                "kms:EncryptionContext:aws:s3:arn": f"{bucket}/AWSLogs/log.json.gz"})]


def replication_role_arn(template: Mapping[str, Any], cfg: EnvironmentConfig) -> str | None:
    """The role S3 assumes to replicate (from the rendered ``RoleName`` of the role whose trust policy
    names s3.amazonaws.com), or None without disaster recovery."""
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        trust = json.dumps(props.get("AssumeRolePolicyDocument", {}))
        if resource["Type"] == "AWS::IAM::Role" and '"s3.amazonaws.com"' in trust:
            return f"arn:{cfg.partition}:iam::{cfg.account_id}:role/{props['RoleName']}"
    return None


def _bucket_arn(template: Mapping[str, Any], cfg: EnvironmentConfig, title: str, region: str) -> str:
    name = resolve(template["Resources"][title]["Properties"]["BucketName"],
                   {"AWS::AccountId": cfg.account_id, "AWS::Region": region, "AWS::Partition": cfg.partition})
    return f"arn:{cfg.partition}:s3:::{name}"


def _admins(cfg: EnvironmentConfig) -> list[Scenario]:
    """Each admin; for a multi-Region key also creating a replica in a DR region and elsewhere
    (``kms:ReplicaRegion``, which only ReplicateKey requests carry)."""
    found = [_role(f"admin role {_name_of(arn)}", arn) for arn in cfg.admin_role_arns]
    if cfg.multi_region:
        arn = cfg.admin_role_arns[0]
        found += [_role(f"admin role {_name_of(arn)}, replica in {cfg.disaster_recovery_regions[0]}", arn,
                        **{"kms:ReplicaRegion": cfg.disaster_recovery_regions[0]}),
                  _role(f"admin role {_name_of(arn)}, replica in another region", arn,
                        **{"kms:ReplicaRegion": "ap-northeast-3"})]
    return found


def _emergency(cfg: EnvironmentConfig) -> list[Scenario]:
    if cfg.emergency_access_role_arn and cfg.emergency_access_mfa == "session":
        return [_role("emergency role with MFA", cfg.emergency_access_role_arn, **{MFA: "true"}),
                _role("emergency role without MFA", cfg.emergency_access_role_arn, **{MFA: "false"})]
    if cfg.emergency_access_role_arn:
        return [_role("emergency role (federated; MFA at the identity provider)", cfg.emergency_access_role_arn)]
    return []


def _outsiders(cfg: EnvironmentConfig) -> list[Scenario]:
    p, acct = cfg.partition, cfg.account_id
    return [_role(f"{tool} (service-linked role)", f"arn:{p}:iam::{acct}:role/{path}")
            for tool, path in SERVICE_LINKED.items()] + [
        _role("other role, same account (IAM kms:*)", f"arn:{p}:iam::{acct}:role/some-other-role"),
        _role("role in another account (IAM kms:*)", f"arn:{p}:iam::{OTHER_ACCOUNT}:role/outsider"),
        Scenario("anonymous", "anonymous", "*"),
    ]


def replica_scenarios(cfg: EnvironmentConfig, template: Mapping[str, Any], region: str,
                      home_template: Mapping[str, Any] | None = None) -> list[Scenario]:
    """The callers of a DR region's replica key: the home key's roles in that region (through its
    service endpoints), auditors and the replication role on the audit-log copies there."""
    copies = _bucket_arn(template, cfg, "AuditLogBucket", region)
    found = [_role("application role", cfg.application_role_arn), *_admins(cfg), *_emergency(cfg)]
    found += _through_services(cfg, region)
    for arn in cfg.audit_log_reader_role_arns:
        found += _through_s3(_name_of(arn), arn, region, copies)
    found += _backup(cfg, region)
    role = replication_role_arn(home_template, cfg) if home_template is not None else None
    if role is not None:
        found += _through_s3("replication role", role, region, copies)
    return found + _outsiders(cfg)


def scenarios(cfg: EnvironmentConfig, template: Mapping[str, Any] | None = None) -> list[Scenario]:
    """Every caller the access review covers, for one environment (``template``: the rendered
    template as a dict; rendered from ``cfg`` when not given)."""
    if template is None:
        from scrybe_kms.template import render  # only when the caller has no rendered template

        template = json.loads(render(cfg))
    region = cfg.aws_region
    trail, log_group = trail_arn(template, cfg), log_group_arn(template, cfg)
    other_trail = trail.rsplit("/", 1)[0] + "/someone-elses-trail"
    other_group = log_group.split(":log-group:")[0] + ":log-group:/someone/else"
    found = [_role("application role", cfg.application_role_arn), *_admins(cfg), *_emergency(cfg)]
    found += _through_services(cfg, region) + _readers(cfg, trail)
    role = replication_role_arn(template, cfg)
    if role is not None:
        found += _through_s3("replication role", role, region, _bucket_arn(template, cfg, "AuditLogBucket", region))
    found += _outsiders(cfg)
    found += [
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
