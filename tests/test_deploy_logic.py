"""The deploy command's pure parts: stack policy, plan reading and refusals, .env merging."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from scrybe_kms.deploy.envfile import merge_env, parse_env_lines
from scrybe_kms.deploy.errors import DeployError
from scrybe_kms.deploy.exports import exported_names, imported_exports
from scrybe_kms.deploy.refusals import Change, _create_only, changes_from, format_plan, local_problems, refusals
from scrybe_kms.derived.stack_policy import protected_resources, stack_policy
from tests.helpers import OUT, ROOT


def test_stack_policy_denies_replacing_or_deleting_any_resource_and_every_alias_update(
        template: dict[str, Any], alarm_template: dict[str, Any], env: str) -> None:
    """Both stacks: every resource is a control, so none may be replaced or deleted by an update;
    key aliases may not be updated at all. The files the build writes are these very policies."""
    for name, body in ((f"{env}.stack-policy.json", template), (f"{env}.alarms.stack-policy.json", alarm_template)):
        policy = json.loads((OUT / name).read_text())
        assert policy == stack_policy(body), name
        allow, deny, *aliases = policy["Statement"]
        assert allow == {"Effect": "Allow", "Principal": "*", "Action": "Update:*", "Resource": "*"}
        assert deny["Effect"] == "Deny" and deny["Action"] == ["Update:Replace", "Update:Delete"]
        alias_ids = sorted(t for t, r in body["Resources"].items() if r["Type"] == "AWS::KMS::Alias")
        assert deny["Resource"] == [f"LogicalResourceId/{t}" for t in sorted(set(body["Resources"]) - set(alias_ids))]
        if alias_ids:
            assert aliases == [{"Effect": "Deny", "Principal": "*", "Action": "Update:*",
                                "Resource": [f"LogicalResourceId/{t}" for t in alias_ids]}]
        else:
            assert aliases == []
    assert "PhiKey" in str(stack_policy(template)) and "AlarmTopic" in str(stack_policy(alarm_template))
    assert f"LogicalResourceId/PhiKeyAliasScrybePhiMasterKey{env.title()}" in str(stack_policy(template))


def test_protected_resources_are_exactly_the_keys_aliases_buckets_their_policies_and_log_group(
        template: dict[str, Any], alarm_template: dict[str, Any], env: str) -> None:
    """Written out, not recomputed: a key, bucket, bucket policy or log group that lost
    ``DeletionPolicy: Retain`` (or an alias that went missing) fails here. The alarm stack retains
    nothing: a deleted alarm stack is redeployed, and its stack policy still denies replacements."""
    assert sorted(protected_resources(template)) == sorted([
        "PhiKey", "AuditKey",
        f"PhiKeyAliasScrybePhiMasterKey{env.title()}", f"AuditKeyAliasScrybePhiAuditKey{env.title()}",
        "AuditLogBucket", "AuditLogAccessLogBucket", "AuditTrailLogGroup",
        "AuditLogBucketPolicy", "AuditLogAccessLogBucketPolicy",
    ])
    assert protected_resources(alarm_template) == {}


def test_each_stack_imports_only_what_the_stacks_before_it_export(
        template: dict[str, Any], alarm_template: dict[str, Any], filter_template: dict[str, Any], cfg: Any,
        env: str) -> None:
    """What ``deploy`` checks with ListExports before their change sets: the two key ARNs (for a
    multi-Region PHI key its ID instead, matched in every region, D47); the filter stack also the
    alarm stack's topics, which its alarms notify (D50)."""
    keys = ({f"scrybe-kms-{env}-KmsKeyId", f"scrybe-kms-{env}-AuditKeyArn"} if cfg.multi_region
            else {f"scrybe-kms-{env}-KmsKeyArn", f"scrybe-kms-{env}-AuditKeyArn"})
    topics = {f"scrybe-kms-{env}-AlarmTopicArn", f"scrybe-kms-{env}-WatchdogTopicArn"}
    assert imported_exports(template) == set()
    assert imported_exports(alarm_template) == keys <= exported_names(template)
    assert imported_exports(filter_template) == keys | topics
    assert topics <= exported_names(alarm_template)


def test_a_key_without_retain_is_no_longer_protected(template: dict[str, Any]) -> None:
    """The rule the list above pins down: protection follows ``DeletionPolicy: Retain``."""
    unretained = copy.deepcopy(template)
    del unretained["Resources"]["PhiKey"]["DeletionPolicy"]
    assert "PhiKey" not in protected_resources(unretained)


def mutate(template: dict[str, Any], change: Any) -> dict[str, Any]:
    new = copy.deepcopy(template)
    change(new)
    return new


@pytest.mark.parametrize(("change", "problem"), [
    (lambda t: t["Resources"].pop("PhiKey"), "PhiKey: it would be removed from the stack"),
    (lambda t: t["Resources"]["PhiKey"]["Properties"].update(KeySpec="RSA_2048"),
     "PhiKey: KeySpec cannot change on an existing key"),
    (lambda t: t["Resources"]["PhiKey"]["Properties"].update(MultiRegion=False),
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

    unprotected = sorted(set(old["Resources"]) - set(protected_resources(old)))

    def safe(t: dict[str, Any]) -> None:
        t["Resources"]["PhiKey"]["Properties"]["Description"] = "new description"
        t["Resources"]["PhiKey"]["Properties"]["PendingWindowInDays"] = 14
        t["Resources"][unprotected[0]].setdefault("Metadata", {})["Changed"] = True
        t["Resources"].pop(unprotected[-1])  # unprotected resources may go

    assert local_problems(old, mutate(old, safe), "us-west-2") == {}
    assert local_problems({}, old, "us-west-2") == {}  # a new stack replaces nothing


class FakeSchemas:
    """Stands in for cfn-lint's PROVIDER_SCHEMA_MANAGER: ``broken`` maps a type to what its lookup
    raises (or returns instead of a schema); other types get the real schema."""

    def __init__(self, real: Any, broken: dict[str, Any]) -> None:
        self.real, self.broken = real, broken

    def get_resource_schema(self, region: str, resource_type: str) -> Any:
        found = self.broken.get(resource_type)
        if isinstance(found, BaseException):
            raise found
        return found if found is not None else self.real.get_resource_schema(region, resource_type)


@pytest.fixture
def schemas(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``schemas({type: exception or stand-in})`` breaks cfn-lint's schema lookup for those types."""
    import cfnlint.schema

    real = cfnlint.schema.PROVIDER_SCHEMA_MANAGER
    _create_only.cache_clear()
    yield lambda broken: monkeypatch.setattr(cfnlint.schema, "PROVIDER_SCHEMA_MANAGER", FakeSchemas(real, broken))
    _create_only.cache_clear()


def not_found(kind: str, cause: Exception | None = None) -> Exception:
    from cfnlint.schema import ResourceNotFoundError

    error = ResourceNotFoundError(kind, "us-west-2")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(("broken", "refused"), [
    ({"AWS::KMS::Key": RuntimeError("schema store moved")}, "AuditKey (AWS::KMS::Key)"),
    ({"AWS::Logs::LogGroup": not_found("AWS::Logs::LogGroup")}, "AuditTrailLogGroup (AWS::Logs::LogGroup)"),
    ({"AWS::KMS::Alias": not_found("AWS::KMS::Alias")}, "AuditKeyAliasScrybePhiAuditKeyProduction (AWS::KMS::Alias)"),
    ({"AWS::S3::Bucket": SimpleNamespace(schema=["not", "a", "schema"])}, "AuditLogAccessLogBucket (AWS::S3::Bucket)"),
    ({"AWS::S3::Bucket": SimpleNamespace(schema={"typeName": "AWS::S3::AccessPoint"})}, "AuditLogAccessLogBucket"),
    ({"AWS::S3::Bucket": SimpleNamespace()}, "AuditLogAccessLogBucket"),  # .schema gone: an API change
])
def test_replacement_check_fails_closed_without_a_schema(
        templates: dict[str, dict[str, Any]], schemas: Any, broken: dict[str, Any], refused: str) -> None:
    """Even an unchanged template is refused: the check could not run, so it cannot say "safe"."""
    schemas(broken)
    old = templates["production"]
    with pytest.raises(DeployError, match=r"cannot check whether (\S+) \(AWS::[\w:]+\) would be replaced: "
                                          r".+; refusing$") as raised:
        local_problems(old, copy.deepcopy(old), "us-west-2")
    assert str(raised.value).startswith(f"cannot check whether {refused}")
    assert type(raised.value) is DeployError and raised.value.exit_code == 1


def retain_topic(t: dict[str, Any]) -> None:
    t["Resources"]["RetainedTopic"] = {"Type": "AWS::SNS::Topic", "DeletionPolicy": "Retain"}


def test_an_unknown_unprotected_type_has_nothing_to_compare(
        templates: dict[str, dict[str, Any]], schemas: Any) -> None:
    """cfn-lint's own "not found" for a type outside PROTECTED_TYPES (here a retained topic)."""
    schemas({"AWS::SNS::Topic": not_found("AWS::SNS::Topic")})
    old = mutate(templates["production"], retain_topic)
    assert "RetainedTopic" in protected_resources(old)
    assert local_problems(old, copy.deepcopy(old), "us-west-2") == {}


def test_a_failed_schema_load_is_not_an_unknown_type(templates: dict[str, dict[str, Any]], schemas: Any) -> None:
    """cfn-lint reports a schema file it could not read with the same exception, chained to the cause."""
    schemas({"AWS::SNS::Topic": not_found("AWS::SNS::Topic", OSError("No such file"))})
    old = mutate(templates["production"], retain_topic)
    with pytest.raises(DeployError, match="cannot check whether RetainedTopic"):
        local_problems(old, copy.deepcopy(old), "us-west-2")


def test_change_set_verdicts_are_honoured_too(templates: dict[str, dict[str, Any]],
                                              alarm_templates: dict[str, dict[str, Any]]) -> None:
    """Even when the templates look alike, a change set that replaces or removes a protected
    resource is refused; so is replacing or removing any other control, which the stack policy
    would stop halfway through the update; changing one in place is fine."""
    t = templates["production"]
    changes = changes_from([
        {"ResourceChange": {"Action": "Modify", "LogicalResourceId": "AuditLogBucket",
                            "ResourceType": "AWS::S3::Bucket", "Replacement": "Conditional"}},
        {"ResourceChange": {"Action": "Remove", "LogicalResourceId": "AuditKey", "ResourceType": "AWS::KMS::Key"}},
        {"ResourceChange": {"Action": "Modify", "LogicalResourceId": "PhiKey",
                            "ResourceType": "AWS::KMS::Key", "Replacement": "False"}},
    ])
    found = refusals(changes, t, t, "us-west-2")
    assert [line.split(":")[0] for line in found] == ["AuditKey", "AuditLogBucket"]
    assert "the change set removes it" in found[0]
    assert "Replacement: Conditional" in found[1]
    a = alarm_templates["production"]
    alarm_changes = changes_from([
        {"ResourceChange": {"Action": "Modify", "LogicalResourceId": "AlarmTopic",
                            "ResourceType": "AWS::SNS::Topic", "Replacement": "True"}},
        {"ResourceChange": {"Action": "Remove", "LogicalResourceId": "AuditEventRuleFailedAlarm",
                            "ResourceType": "AWS::CloudWatch::Alarm"}},
        {"ResourceChange": {"Action": "Modify", "LogicalResourceId": "WatchdogTopic",
                            "ResourceType": "AWS::SNS::Topic", "Replacement": "False"}},
        {"ResourceChange": {"Action": "Add", "LogicalResourceId": "NewAlarm",
                            "ResourceType": "AWS::CloudWatch::Alarm"}},
    ])
    found = refusals(alarm_changes, a, a, "us-west-2")
    assert [line.split(":")[0] for line in found] == ["AlarmTopic", "AuditEventRuleFailedAlarm"]
    assert all("--stack-policy-during-update-body" in line for line in found)


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
    # It really built every environment: per environment the key, filter and alarm stacks' templates
    # and stack policies and the access matrix; for production also its us-east-1 DR stack's.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{env}.{kind}" for env in ("dev", "staging", "production")
         for kind in ("json", "stack-policy.json", "filters.json", "filters.stack-policy.json", "alarms.json",
                      "alarms.stack-policy.json", "access.md")]
        + [f"production.replica-us-east-1.{kind}" for kind in ("json", "stack-policy.json", "access.md")])
    assert len(list(tmp_path.iterdir())) == 24


@pytest.mark.parametrize(("before", "after"), [(None, "compliance"), ("governance", "compliance"),
                                               ("compliance", None)])
def test_object_lock_cannot_be_added_changed_or_dropped_on_a_deployed_bucket(before: Any, after: Any) -> None:
    """Object Lock protects only versions written after it is set: the deploy command refuses to
    change it on an existing bucket, and says how to migrate (issue 12, D29)."""
    from scrybe_kms.template import render
    from tests.helpers import config

    old = json.loads(render(config(audit_log_object_lock=before)))
    new = json.loads(render(config(audit_log_object_lock=after)))
    problems = local_problems(old, new, "us-west-2")
    assert list(problems) == ["AuditLogBucket"]
    why = problems["AuditLogBucket"]
    assert "Object Lock" in why and "Migration: deploy a new bucket" in why


@pytest.mark.parametrize(("before", "after"), [((), ("us-east-1",)), (("us-east-1",), ())])
def test_multi_region_cannot_change_on_a_deployed_key(before: tuple[str, ...], after: tuple[str, ...]) -> None:
    """Adding the first DR region to a deployed environment, or removing the last, would flip
    MultiRegion: refused with the migration path (a new key, re-encrypt; issue 12, D47)."""
    from scrybe_kms.template import render
    from tests.helpers import config

    old = json.loads(render(config(disaster_recovery_regions=list(before))))
    new = json.loads(render(config(disaster_recovery_regions=list(after))))
    problems = local_problems(old, new, "us-west-2")
    assert "MultiRegion cannot change on an existing key" in problems["PhiKey"]
    assert "re-encrypt" in problems["PhiKey"] and "create a new key" in problems["PhiKey"]


def test_removing_one_of_two_dr_regions_keeps_the_key_and_touches_no_replica() -> None:
    """With another DR region left the key stays multi-Region: nothing protected is lost, and the
    removed region's stack (its replica key and bucket) is not in this stack at all."""
    from scrybe_kms.template import render
    from tests.helpers import config

    old = json.loads(render(config(disaster_recovery_regions=["us-east-1", "eu-west-1"])))
    new = json.loads(render(config(disaster_recovery_regions=["us-east-1"])))
    assert local_problems(old, new, "us-west-2") == {}
    assert not [r for r in old["Resources"].values() if r["Type"] == "AWS::KMS::ReplicaKey"]


def test_a_shorter_object_lock_retention_is_refused() -> None:
    """Versions already written stay locked for the old period: a shorter default retention would
    leave the configuration promising what the bucket cannot do (issue 12)."""
    from scrybe_kms.template import render
    from tests.helpers import config

    old = json.loads(render(config(audit_log_retention_days=3653)))
    new = json.loads(render(config(audit_log_retention_days=2557)))
    problems = local_problems(old, new, "us-west-2")
    assert set(problems) == {"AuditLogBucket"}
    assert "default retention would drop from 3653 to 2557 days" in problems["AuditLogBucket"]
    assert "Keep audit_log_retention_days at 3653 or more" in problems["AuditLogBucket"]
    # Longer is fine: new versions are simply locked longer.
    assert local_problems(new, old, "us-west-2") == {}
