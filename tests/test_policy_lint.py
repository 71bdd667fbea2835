"""parliament on every policy in every template; each remaining finding is explained here."""

from __future__ import annotations

import json
from typing import Any

from parliament import analyze_policy_string

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.derived.access import resolve

#: (resource, issue) -> (why the finding does not apply, exactly which findings of that kind are
#: explained: ``None`` for every one, else the set of details / actions parliament reported). A new
#: finding of a known kind with another detail is not excused.
KEY_PERMISSIONS = frozenset({"kms:createkey", "kms:retiregrant", "kms:putkeypolicy", "kms:revokegrant",
                             "kms:creategrant"})
LOGS_CONTEXT = frozenset({"Unknown condition kms:EncryptionContext:aws:logs:arn for action kms:DescribeCustomKeyStores",
                          "Unknown condition kms:EncryptionContext:aws:logs:arn for action kms:DescribeKey"})
EXPLAINED: dict[tuple[str, str], tuple[str, frozenset[str] | None]] = {
    ("PhiKey", "RESOURCE_STAR"): ("In a key policy, Resource \"*\" means this key only.", None),
    ("AuditKey", "RESOURCE_STAR"): ("In a key policy, Resource \"*\" means this key only.", None),
    ("PhiKeyReplica", "RESOURCE_STAR"): ("In a key policy, Resource \"*\" means this key only.", None),
    ("PhiKeyReplica", "PERMISSIONS_MANAGEMENT_ACTIONS"): ("As for PhiKey.", KEY_PERMISSIONS),
    ("AuditKey", "UNKNOWN_CONDITION_FOR_ACTION"): (
        "AWS's documented CloudWatch Logs statement puts the log-group encryption-context condition on "
        "kms:Describe* too; such requests carry no context, so the condition only narrows it further.", LOGS_CONTEXT),
    ("PhiKey", "PERMISSIONS_MANAGEMENT_ACTIONS"): (
        "kms:* of the break-glass role (MFA or IdP only, alarmed), admins' PutKeyPolicy (the lockout check needs it) "
        "and RevokeGrant, and CreateGrant only for AWS resources; all alarmed and in the README.", KEY_PERMISSIONS),
    ("AuditKey", "PERMISSIONS_MANAGEMENT_ACTIONS"): ("As for PhiKey.", KEY_PERMISSIONS),
    ("AuditKey", "MISMATCHED_TYPE"): (
        "AWS documents ArnEquals for kms:EncryptionContext:aws:logs:arn; parliament types the key as String.",
        frozenset({"Type mismatch: ArnEquals requires a value of type Arn but given String"})),
}


def explained(title: str, finding: Any) -> bool:
    entry = EXPLAINED.get((title, finding.issue))
    if entry is None:
        return False
    details = entry[1]
    if details is None:
        return True
    if finding.issue == "PERMISSIONS_MANAGEMENT_ACTIONS":
        return set(finding.location.get("actions", [])) <= details
    return str(finding.detail) in details


def physical_values(template: dict[str, Any], cfg: EnvironmentConfig) -> dict[str, str]:
    """Plausible Ref / GetAtt values per resource type, so policies can be linted as deployed."""
    region, acct, part = cfg.aws_region, cfg.account_id, cfg.partition
    values = {"AWS::Partition": part, "AWS::Region": region, "AWS::AccountId": acct}
    for title, resource in template["Resources"].items():
        kind = resource["Type"]
        name = title.lower()
        arn = {
            "AWS::KMS::Key": f"arn:{part}:kms:{region}:{acct}:key/{name}",
            "AWS::KMS::ReplicaKey": f"arn:{part}:kms:{region}:{acct}:key/{name}",
            "AWS::S3::Bucket": f"arn:{part}:s3:::{name}",
            "AWS::SNS::Topic": f"arn:{part}:sns:{region}:{acct}:{name}",
            "AWS::Events::Rule": f"arn:{part}:events:{region}:{acct}:rule/{name}",
            "AWS::CloudTrail::Trail": f"arn:{part}:cloudtrail:{region}:{acct}:trail/{name}",
            "AWS::Logs::LogGroup": f"arn:{part}:logs:{region}:{acct}:log-group:{name}:*",
            "AWS::IAM::Role": f"arn:{part}:iam::{acct}:role/{name}",
            "AWS::SQS::Queue": f"arn:{part}:sqs:{region}:{acct}:{name}",
        }.get(kind, name)
        values[f"{title}.Arn"] = arn
        values[title] = arn if kind == "AWS::SNS::Topic" else name
    return values


def policies(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every resource and identity policy. Trust policies are left out: parliament reads every
    document as an identity policy and reports their missing Resource as malformed."""
    found = []
    for title, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        for key in ("KeyPolicy", "PolicyDocument"):
            if key in props:
                found.append((title, props[key]))
        found += [(title, p["PolicyDocument"]) for p in props.get("Policies", [])]
    return found


def test_every_policy_passes_parliament(template: dict[str, Any], alarm_template: dict[str, Any],
                                        cfg: EnvironmentConfig) -> None:
    values = {**physical_values(template, cfg), **physical_values(alarm_template, cfg)}
    linted = policies(template) + policies(alarm_template)
    # two keys, two buckets, the delivery role; two topics and the dead-letter queue; with DR the
    # replication role's policy
    assert len(linted) == 8 + cfg.multi_region
    lint_all(linted, values)


def test_every_dr_region_policy_passes_parliament(replica_rendered: dict[tuple[str, str], str],
                                                  configs: dict[str, EnvironmentConfig]) -> None:
    """The replica key, the DR buckets, the forwarding role, the queue and the watchdog topic."""
    assert replica_rendered
    for (env, region), text in replica_rendered.items():
        template = json.loads(text)
        cfg = configs[env]
        values = {**physical_values(template, cfg), "AWS::Region": region, "PrimaryKeyArn": "arn:aws:kms:x"}
        linted = policies(template)
        assert len(linted) == 6
        lint_all(linted, values)


def lint_all(linted: list[tuple[str, dict[str, Any]]], values: dict[str, str]) -> None:
    unexplained = []
    for title, document in linted:
        result = analyze_policy_string(json.dumps(resolve(document, values)), include_community_auditors=True)
        for finding in result.findings:
            if not explained(title, finding):
                unexplained.append(f"{title}: {finding.issue} {finding.detail}")
    assert not unexplained, "\n".join(unexplained)


def test_parliament_would_flag_a_bad_policy() -> None:
    bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decryptt", "Resource": "*"}]}
    issues = {f.issue for f in analyze_policy_string(json.dumps(bad)).findings}
    assert "UNKNOWN_ACTION" in issues
