"""Before anything is created: does a name the template would create already exist?

Every fixed physical name a stack creates (key aliases, buckets, the log group, the trail, the
topics) is looked up before the change set, for each resource the deployed stack does not hold
yet. A name that exists outside the stack would make CloudFormation fail halfway, after it had
already created new keys (issue 13: three tries took an account from 2 to 8 customer keys), so
the deploy stops first and says what to do: ``--adopt`` for what a deleted key stack retained
(decision D40), deleting or renaming anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import botocore.exceptions as boto_errors

from scrybe_kms.deploy.errors import DeployError, aws_errors, error_code
from scrybe_kms.deploy.guards import NOT_IMPLEMENTED
from scrybe_kms.deploy.session import AwsSession

__all__ = ["ADOPTABLE", "NAME_PROPERTIES", "Existing", "check_names", "find_existing", "lookup", "physical_name"]

#: The property holding each named type's physical name.
NAME_PROPERTIES = {"AWS::KMS::Alias": "AliasName", "AWS::S3::Bucket": "BucketName",
                   "AWS::Logs::LogGroup": "LogGroupName", "AWS::CloudTrail::Trail": "TrailName",
                   "AWS::SNS::Topic": "TopicName"}
#: What a deleted key stack retains and ``--adopt`` imports (the keys come with their aliases).
ADOPTABLE = frozenset({"AWS::KMS::Alias", "AWS::S3::Bucket", "AWS::Logs::LogGroup"})
_KIND = {"AWS::KMS::Alias": "KMS alias", "AWS::S3::Bucket": "S3 bucket", "AWS::Logs::LogGroup": "log group",
         "AWS::CloudTrail::Trail": "CloudTrail trail", "AWS::SNS::Topic": "SNS topic"}
#: "No such thing", per service.
_ABSENT = frozenset({"NotFoundException", "404", "NoSuchBucket", "NotFound", "TrailNotFoundException",
                     "ResourceNotFoundException"})


@dataclass(frozen=True)
class Existing:
    """A physical name that already exists. ``key_id``/``key_state`` for an alias's key;
    ``foreign`` for a bucket name another account holds (S3 names are global)."""

    logical_id: str
    resource_type: str
    name: str
    key_id: str = ""
    key_state: str = ""
    foreign: bool = False

    @property
    def adoptable(self) -> bool:
        return self.resource_type in ADOPTABLE and not self.foreign and self.key_state != "PendingDeletion"

    def describe(self) -> str:
        line = f"{self.logical_id}: {_KIND[self.resource_type]} {self.name}"
        if self.key_id:
            line += f" (points at key {self.key_id}, {self.key_state})"
        if self.foreign:
            line += " (held by another AWS account: S3 bucket names are global)"
        return line


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def physical_name(resource: Mapping[str, Any], region: str, account: str) -> str | None:
    """The resource's fixed name: a literal, or an ``Fn::Sub`` of pseudo parameters only."""
    value = resource.get("Properties", {}).get(NAME_PROPERTIES.get(resource.get("Type", ""), ""))
    if isinstance(value, Mapping) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        value = (value["Fn::Sub"].replace("${AWS::AccountId}", account).replace("${AWS::Region}", region)
                 .replace("${AWS::Partition}", _partition(region)))
        return None if "${" in value else value
    return value if isinstance(value, str) else None


def lookup(aws: AwsSession, logical_id: str, resource_type: str, name: str) -> Existing | None:
    """The resource of that type and name, if it exists."""
    with aws_errors(f"check whether the {_KIND[resource_type]} {name} already exists"):
        try:
            return _lookup(aws, logical_id, resource_type, name)
        except boto_errors.ParamValidationError:
            return None  # a name AWS would not accept cannot exist; CloudFormation reports it
        except boto_errors.ClientError as exc:
            if error_code(exc) in _ABSENT:
                return None
            if aws.endpoint and error_code(exc) in NOT_IMPLEMENTED:
                return None  # an emulator without this lookup (LocalStack's CloudTrail): nothing to check
            if resource_type == "AWS::S3::Bucket" and error_code(exc) in ("403", "AccessDenied"):
                return Existing(logical_id, resource_type, name, foreign=True)
            raise


def _lookup(aws: AwsSession, logical_id: str, resource_type: str, name: str) -> Existing | None:
    if resource_type == "AWS::KMS::Alias":
        meta = aws.client("kms").describe_key(KeyId=name)["KeyMetadata"]
        return Existing(logical_id, resource_type, name, str(meta["KeyId"]), str(meta.get("KeyState", "")))
    if resource_type == "AWS::S3::Bucket":
        aws.client("s3").head_bucket(Bucket=name)
    elif resource_type == "AWS::Logs::LogGroup":
        groups = aws.client("logs").describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
        if not any(group.get("logGroupName") == name for group in groups):
            return None
    elif resource_type == "AWS::CloudTrail::Trail":
        aws.client("cloudtrail").get_trail(Name=name)
    elif resource_type == "AWS::SNS::Topic":
        arn = f"arn:{_partition(aws.region)}:sns:{aws.region}:{aws.account}:{name}"
        aws.client("sns").get_topic_attributes(TopicArn=arn)
    return Existing(logical_id, resource_type, name)


def find_existing(aws: AwsSession, template: Mapping[str, Any], logical_ids: list[str]) -> list[Existing]:
    """Which of ``logical_ids`` (named resources of ``template``) already exist, in that order."""
    found = []
    for title in logical_ids:
        resource = template["Resources"][title]
        name = physical_name(resource, aws.region, aws.account)
        if name is not None:
            existing = lookup(aws, title, resource["Type"], name)
            if existing is not None:
                found.append(existing)
    return found


def check_names(aws: AwsSession, stack: str, environment: str, new: Mapping[str, Any],
                old: Mapping[str, Any]) -> None:
    """Refuse (one message, nothing created) if a name the update would create already exists."""
    added = sorted(title for title, resource in new["Resources"].items()
                   if title not in old.get("Resources", {}) and resource.get("Type") in NAME_PROPERTIES)
    found = find_existing(aws, new, added)
    if not found:
        return
    lines = [f"cannot {'update' if old else 'create'} {stack}: names it would create already exist outside it, "
             "so CloudFormation would fail halfway (after creating new keys). Nothing was created or changed."]
    lines += [f"  {item.describe()}" for item in found]
    if not old and all(item.adoptable for item in found):
        lines.append(f"They are what a deleted {stack} retains. Bring them back under a new stack, creating no new "
                     f"key, with:\n  scrybe-kms deploy {environment} --adopt")
    else:
        lines.append("Delete or rename those that belong to nothing (a retained key: schedule its deletion or use "
                     "--adopt on a deleted stack), or import them into the stack yourself, then deploy again.")
    raise DeployError("\n".join(lines))
