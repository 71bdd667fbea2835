"""``--adopt``: bring what a deleted key stack retained back under a new stack (decision D40).

A deleted key stack leaves its keys, their aliases, both buckets with their policies and the log
group (``DeletionPolicy: Retain``). Deploying again would create new keys and then fail on the
aliases; instead, ``--adopt`` finds each retained resource by its fixed name (a key by its alias,
with ``kms:DescribeKey``), creates the stack with a CloudFormation ``IMPORT`` change set holding
only those resources, and the ordinary update that follows creates the rest (the trail, its role,
the metric filters, the outputs), creating no new key.

An import change set may hold nothing but the resources it imports, each with a
``DeletionPolicy``, identified by its type's primary identifier; the import template therefore has
no outputs, rules or other resources (they come with the update), only the parameters and conditions
the imported resources use (with their defaults: replication stays off until the update).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import botocore.exceptions as boto_errors

from scrybe_kms.deploy.errors import DeployError, aws_errors, error_code
from scrybe_kms.deploy.preflight import lookup, physical_name
from scrybe_kms.deploy.session import AwsSession

__all__ = ["IDENTIFIERS", "Adoption", "find_retained"]

#: Each importable type's primary identifier (its resource provider schema's ``primaryIdentifier``).
IDENTIFIERS = {"AWS::KMS::Key": "KeyId", "AWS::KMS::Alias": "AliasName", "AWS::S3::Bucket": "BucketName",
               "AWS::S3::BucketPolicy": "Bucket", "AWS::Logs::LogGroup": "LogGroupName"}


@dataclass(frozen=True)
class Adoption:
    """The import change set's template and ``ResourcesToImport``, and one line per resource."""

    template: dict[str, Any]
    resources: list[dict[str, Any]]
    found: list[str]


def _identifier(resource_type: str, logical_id: str, value: str) -> dict[str, Any]:
    return {"ResourceType": resource_type, "LogicalResourceId": logical_id,
            "ResourceIdentifier": {IDENTIFIERS[resource_type]: value}}


def _references(node: Any) -> set[str]:
    """Logical ids ``node`` refers to (Ref, Fn::GetAtt, ${X} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else str(value).split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {m for m in re.findall(r"\$\{([^}!.:]+)", str(text))}
                found |= _references(value)
            else:
                found |= _references(value)
    elif isinstance(node, list):
        for item in node:
            found |= _references(item)
    return found


def _bucket_policy_exists(aws: AwsSession, bucket: str) -> bool:
    with aws_errors(f"read the policy of bucket {bucket}"):
        try:
            aws.client("s3").get_bucket_policy(Bucket=bucket)
        except boto_errors.ClientError as exc:
            if error_code(exc) in ("NoSuchBucketPolicy", "NoSuchBucket", "404"):
                return False
            raise
    return True


def find_retained(aws: AwsSession, stack: str, template: Mapping[str, Any]) -> Adoption:
    """What of ``template``'s retained resources exists, as an import; refuses unless both keys
    are found by their aliases (without them an update would create new keys)."""
    resources = template["Resources"]
    chosen: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for title, resource in sorted(resources.items()):
        kind = resource["Type"]
        if kind == "AWS::KMS::Alias":
            _adopt_alias(aws, title, resource, resources, chosen, problems)
        elif kind in ("AWS::S3::Bucket", "AWS::Logs::LogGroup") and resource.get("DeletionPolicy") == "Retain":
            name = physical_name(resource, aws.region, aws.account)
            existing = lookup(aws, title, kind, name) if name else None
            if existing is not None and existing.foreign:
                problems.append(f"{existing.describe()}: it cannot be imported here")
            elif existing is not None:
                chosen[title] = _identifier(kind, title, existing.name)
    for title, resource in sorted(resources.items()):
        bucket = resource.get("Properties", {}).get("Bucket", {})
        if (resource["Type"] == "AWS::S3::BucketPolicy" and isinstance(bucket, Mapping)
                and bucket.get("Ref") in chosen):
            name = chosen[bucket["Ref"]]["ResourceIdentifier"]["BucketName"]
            if _bucket_policy_exists(aws, name):
                chosen[title] = _identifier("AWS::S3::BucketPolicy", title, name)
    keys = [t for t, r in resources.items() if r["Type"] == "AWS::KMS::Key"]
    missing = [t for t in keys if t not in chosen]
    if missing and not problems:
        problems.append(f"no retained key was found for {', '.join(sorted(missing))} (looked it up by its alias); "
                        "adopting without it would create a new key")
    for title in chosen:
        outside = sorted((_references(resources[title]) & set(resources)) - set(chosen))
        if outside:
            problems.append(f"{title} exists but {', '.join(outside)}, which it refers to, does not; "
                            "CloudFormation cannot import one without the other")
    if problems:
        raise DeployError(f"cannot adopt into {stack}; nothing was created or changed:\n"
                          + "\n".join(f"  {p}" for p in problems))
    return _adoption(template, chosen)


def _adopt_alias(aws: AwsSession, title: str, resource: Mapping[str, Any], resources: Mapping[str, Any],
                 chosen: dict[str, dict[str, Any]], problems: list[str]) -> None:
    name = physical_name(resource, aws.region, aws.account)
    target = resource.get("Properties", {}).get("TargetKeyId", {})
    key = target.get("Ref") if isinstance(target, Mapping) else None
    if name is None or key not in resources:
        return
    existing = lookup(aws, title, "AWS::KMS::Alias", name)
    if existing is None:
        return
    if existing.key_state == "PendingDeletion":
        problems.append(f"{existing.describe()}: cancel the key's deletion first "
                        f"(aws kms cancel-key-deletion --key-id {existing.key_id}), then adopt it")
        return
    chosen[title] = _identifier("AWS::KMS::Alias", title, name)
    chosen[str(key)] = _identifier("AWS::KMS::Key", str(key), existing.key_id)


def _adoption(template: Mapping[str, Any], chosen: Mapping[str, dict[str, Any]]) -> Adoption:
    resources: dict[str, Any] = {}
    for title in sorted(chosen):
        resource = dict(template["Resources"][title])
        depends = resource.get("DependsOn")
        if depends is not None:  # ordering only: keep what is imported alongside
            kept = [d for d in ([depends] if isinstance(depends, str) else depends) if d in chosen]
            if kept:
                resource["DependsOn"] = kept
            else:
                resource.pop("DependsOn")
        resources[title] = resource
    body: dict[str, Any] = {"Resources": resources}
    # A retained bucket's replication rules are switched by parameters and conditions (D49).
    for section in ("Description", "Parameters", "Conditions"):
        if section in template:
            body[section] = template[section]
    found = [f"{item['LogicalResourceId']} ({item['ResourceType']}): "
             f"{next(iter(item['ResourceIdentifier'].values()))}" for item in chosen.values()]
    return Adoption(body, [chosen[t] for t in sorted(chosen)], sorted(found))
