"""The deploy command's pure parts: stack policy, plan reading and refusals, .env merging."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scrybe_kms.deploy.envfile import merge_env, parse_env_lines
from scrybe_kms.deploy.refusals import Change, changes_from, format_plan, local_problems, refusals
from scrybe_kms.derived.stack_policy import protected_resources, stack_policy
from tests.helpers import OUT, ROOT


def test_stack_policy_protects_keys_aliases_buckets_and_logs(template: dict[str, Any], env: str) -> None:
    policy = json.loads((OUT / f"{env}.stack-policy.json").read_text())
    assert policy == stack_policy(template)
    allow, deny, aliases = policy["Statement"]
    assert allow == {"Effect": "Allow", "Principal": "*", "Action": "Update:*", "Resource": "*"}
    assert deny["Effect"] == "Deny" and deny["Action"] == ["Update:Replace", "Update:Delete"]
    protected = ("AuditKey", "AuditLogAccessLogBucket", "AuditLogBucket", "AuditTrailLogGroup", "PhiKey")
    assert deny["Resource"] == [f"LogicalResourceId/{t}" for t in protected]
    assert aliases["Action"] == "Update:*" and f"LogicalResourceId/PhiKeyAliasScrybePhiMasterKey{env.title()}" in \
        aliases["Resource"]


def test_protected_resources_follow_the_template(template: dict[str, Any]) -> None:
    retained = {t for t, r in template["Resources"].items()
                if r.get("DeletionPolicy") == "Retain" or r["Type"] == "AWS::KMS::Alias"}
    assert set(protected_resources(template)) == retained


def mutate(template: dict[str, Any], change: Any) -> dict[str, Any]:
    new = copy.deepcopy(template)
    change(new)
    return new


@pytest.mark.parametrize(("change", "problem"), [
    (lambda t: t["Resources"].pop("PhiKey"), "PhiKey: it would be removed from the stack"),
    (lambda t: t["Resources"]["PhiKey"]["Properties"].update(KeySpec="RSA_2048"),
     "PhiKey: KeySpec cannot change on an existing key"),
    (lambda t: t["Resources"]["PhiKey"]["Properties"].update(MultiRegion=True),
     "PhiKey: MultiRegion cannot change on an existing key"),
    (lambda t: t["Resources"]["PhiKey"].update(DeletionPolicy="Delete"),
     "PhiKey: its DeletionPolicy would no longer be Retain"),
    (lambda t: t["Resources"]["AuditLogBucket"]["Properties"].update(BucketName="x"),
     "AuditLogBucket: changing BucketName replaces it"),
    (lambda t: t["Resources"]["AuditTrailLogGroup"]["Properties"].update(LogGroupName="/x"),
     "AuditTrailLogGroup: changing LogGroupName replaces it"),
    (lambda t: t["Resources"]["PhiKeyAliasScrybePhiMasterKeyProduction"]["Properties"].update(
        TargetKeyId={"Ref": "AuditKey"}), "PhiKeyAliasScrybePhiMasterKeyProduction: its target would change"),
    (lambda t: t["Resources"]["AuditKey"].update(Type="AWS::KMS::ReplicaKey"), "AuditKey: its type would change"),
])
def test_local_check_finds_what_would_replace_or_lose_a_protected_resource(
        templates: dict[str, dict[str, Any]], change: Any, problem: str) -> None:
    old = templates["production"]
    found = [f"{t}: {why}" for t, why in local_problems(old, mutate(old, change), "us-west-2").items()]
    assert len(found) == 1 and found[0].startswith(problem), found


def test_safe_changes_pass_the_local_check(templates: dict[str, dict[str, Any]]) -> None:
    old = templates["production"]

    def safe(t: dict[str, Any]) -> None:
        t["Resources"]["PhiKey"]["Properties"]["Description"] = "new description"
        t["Resources"]["PhiKey"]["Properties"]["PendingWindowInDays"] = 14
        t["Resources"]["AlarmTopic"]["Properties"]["DisplayName"] = "x"
        t["Resources"].pop("PhiKeyGrantCreatedAlarm")  # unprotected resources may go

    assert local_problems(old, mutate(old, safe), "us-west-2") == {}
    assert local_problems({}, old, "us-west-2") == {}  # a new stack replaces nothing


def test_change_set_verdicts_are_honoured_too(templates: dict[str, dict[str, Any]]) -> None:
    """Even when the templates look alike, a change set that replaces or removes a protected
    resource is refused; the same for unprotected resources is fine."""
    t = templates["production"]
    changes = changes_from([
        {"ResourceChange": {"Action": "Modify", "LogicalResourceId": "AuditLogBucket",
                            "ResourceType": "AWS::S3::Bucket", "Replacement": "Conditional"}},
        {"ResourceChange": {"Action": "Remove", "LogicalResourceId": "AuditKey", "ResourceType": "AWS::KMS::Key"}},
        {"ResourceChange": {"Action": "Modify", "LogicalResourceId": "AlarmTopic",
                            "ResourceType": "AWS::SNS::Topic", "Replacement": "True"}},
        {"ResourceChange": {"Action": "Modify", "LogicalResourceId": "PhiKey",
                            "ResourceType": "AWS::KMS::Key", "Replacement": "False"}},
    ])
    found = refusals(changes, t, t, "us-west-2")
    assert [line.split(":")[0] for line in found] == ["AuditKey", "AuditLogBucket"]
    assert "the change set removes it" in found[0]
    assert "Replacement: Conditional" in found[1]


def test_plan_is_readable() -> None:
    plan = format_plan([Change("Add", "NewAlias", "AWS::KMS::Alias"),
                        Change("Modify", "PhiKey", "AWS::KMS::Key", "False"),
                        Change("Modify", "AuditLogBucket", "AWS::S3::Bucket", "True"),
                        Change("Remove", "OldAlarm", "AWS::CloudWatch::Alarm")])
    assert plan.splitlines() == [
        "plan: 4 resource change(s)",
        "  add       NewAlias        AWS::KMS::Alias",
        "  modify    PhiKey          AWS::KMS::Key",
        "  replace   AuditLogBucket  AWS::S3::Bucket",
        "  remove    OldAlarm        AWS::CloudWatch::Alarm",
    ]
    assert format_plan([]) == "plan: no changes"


def test_env_merge_keeps_other_lines_and_replaces_in_place() -> None:
    existing = "# app\nDATABASE_URL=x\nexport AWS_KMS_KEY_ID=old\n\nAWS_KMS_REGION=eu-west-1\nTAIL=1"
    values = parse_env_lines("AWS_KMS_KEY_ID=k\nAWS_KMS_KEY_ARN=arn:aws:kms:us-west-2:1:key/k\n"
                             "AWS_KMS_KEY_ALIAS=alias/a\nAWS_KMS_REGION=us-west-2\n")
    assert merge_env(existing, values).splitlines() == [
        "# app", "DATABASE_URL=x", "export AWS_KMS_KEY_ID=k", "", "AWS_KMS_REGION=us-west-2", "TAIL=1",
        "AWS_KMS_KEY_ARN=arn:aws:kms:us-west-2:1:key/k", "AWS_KMS_KEY_ALIAS=alias/a"]
    assert merge_env("", values).count("\n") == 4


def test_building_never_imports_boto3_or_cfn_lint(tmp_path: Path) -> None:
    """``scrybe-kms build`` needs neither the AWS SDK nor a linter: only the deploy commands do
    (boto3 alone adds about 130 ms to a cold start). Runs the real command in a fresh process."""
    code = ("import sys; from scrybe_kms.cli import main; "
            f"assert main(['build', '--out', {str(tmp_path)!r}]) == 0; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'cfnlint', 's3transfer'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.splitlines()[-1] == "[]"
    assert len(list(tmp_path.iterdir())) == 9  # it really built every environment
