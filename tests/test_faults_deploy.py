"""Issue 13's faults, one test each, against botocore's Stubber (no network): throttled polls,
a rerun on a stack another run left in progress, overlapping deploys, names that already exist,
``--adopt``, refusals of ``UpdateReplacePolicy`` and of a template built for another account,
and templates that are not templates.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY

from scrybe_kms.cli import main
from scrybe_kms.deploy import DeployError, Refused, changeset
from scrybe_kms.deploy.adopt import find_retained
from scrybe_kms.deploy.errors import LostTrack
from scrybe_kms.deploy.session import AwsSession
from scrybe_kms.derived.stack_policy import stack_policy
from tests.helpers import STACKS
from tests.test_deploy_events import STACK, event, stack_event
from tests.test_deploy_run import (
    CAPABILITIES,
    DESCRIPTIONS,
    NO_CHANGES,
    TEMPLATE,
    Fake,
    changes,
    describe_key,
    described,
    fake,
    settled,
    variant,
)

__all__ = ["fake"]  # the fixture, used by name

MINE = "scrybe-kms-20261128-120000-mine0001"


@pytest.fixture(autouse=True)
def fixed_change_set_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """The change set's name is also the execution's ClientRequestToken: fix it to stub events."""
    monkeypatch.setattr(changeset, "new_name", lambda: MINE)


def mine(number: int, logical: str, status: str, kind: str = "AWS::KMS::Key", token: str = MINE) -> dict[str, Any]:
    return {**event(number, logical, status, kind), "ClientRequestToken": token}


def throttle(fake: Fake, operation: str, times: int, **params: Any) -> None:
    for _ in range(times):
        fake.stubber.add_client_error(operation, "Throttling", "Rate exceeded", 400, expected_params=params or None)


def expect_update_until_execute(fake: Fake, new: dict[str, Any]) -> None:
    fake.expect_deployed()
    fake.expect_change_set(new, **changes(("Modify", "PhiKey", "AWS::KMS::Key", "False")))
    fake.expect_stack_policy(new)
    fake.expect("describe_stack_events", {"StackEvents": [settled(0, "UPDATE_COMPLETE")]}, StackName=STACK)
    fake.expect("execute_change_set", StackName=STACK, ChangeSetName=MINE, ClientRequestToken=MINE)


# -- finding 2: one transient error no longer abandons a running deploy ---------------------------

def test_throttled_polls_are_tried_again_and_the_guards_and_env_file_still_follow(fake: Fake) -> None:
    new = variant(describe_key)
    env_file = fake.tmp_path / ".env"
    expect_update_until_execute(fake, new)
    throttle(fake, "describe_stack_events", 3, StackName=STACK)
    fake.expect("describe_stack_events", {"StackEvents": [
        {**settled(2, "UPDATE_COMPLETE"), "ClientRequestToken": MINE}, mine(1, "PhiKey", "UPDATE_COMPLETE"),
        settled(0, "X")]}, StackName=STACK)
    fake.stubber.add_client_error("describe_stacks", "ServiceUnavailable", "try later", 503,
                                  expected_params={"StackName": STACK})
    fake.expect("describe_stacks", described("UPDATE_COMPLETE", False), StackName=STACK)
    fake.expect("update_termination_protection", StackName=STACK, EnableTerminationProtection=True)
    assert fake.deploy(new, env_file=env_file) == 0
    fake.stubber.assert_no_pending_responses()
    assert fake.calls.count("DescribeStackEvents") == 5
    assert env_file.read_text() == "AWS_KMS_KEY_ID=k-1\nAWS_KMS_REGION=us-west-2\n"
    assert f"{STACK}: UPDATE_COMPLETE" in fake.printed()


def test_a_poll_that_keeps_failing_says_the_stack_may_still_run_and_how_to_resume(fake: Fake) -> None:
    new = variant(describe_key)
    expect_update_until_execute(fake, new)
    throttle(fake, "describe_stack_events", 8, StackName=STACK)
    with pytest.raises(LostTrack) as raised:
        fake.deploy(new, env_file=fake.tmp_path / ".env")
    fake.stubber.assert_no_pending_responses()
    message = str(raised.value)
    assert raised.value.exit_code == 4
    assert "gave up trying to read the events of scrybe-kms-production after 8 tries" in message
    assert f"{STACK} may still be in progress" in message
    assert "Run `scrybe-kms deploy production` again" in message
    assert "termination protection" in message and ".env lines" in message
    assert "DeleteChangeSet" not in fake.calls  # it was executed: nothing to delete


def test_a_rerun_follows_a_stack_in_progress_then_applies_what_was_skipped(fake: Fake) -> None:
    """Ctrl-C or a lost connection left the stack UPDATE_IN_PROGRESS: the next run follows it to
    the end, then finds no changes and applies the guards and the .env lines."""
    env_file = fake.tmp_path / ".env"
    fake.expect_stack("UPDATE_IN_PROGRESS")
    fake.expect("describe_stack_events", {"StackEvents": [stack_event(1, "UPDATE_IN_PROGRESS")]}, StackName=STACK)
    fake.expect("describe_stack_events", {"StackEvents": [stack_event(3, "UPDATE_COMPLETE"),
                                                          event(2, "PhiKey", "UPDATE_COMPLETE", "AWS::KMS::Key"),
                                                          stack_event(1, "UPDATE_IN_PROGRESS")]}, StackName=STACK)
    fake.expect("describe_stacks", described("UPDATE_COMPLETE", False), StackName=STACK)
    fake.expect("describe_stacks", described("UPDATE_COMPLETE", False), StackName=STACK)
    fake.expect("get_template", {"TemplateBody": json.dumps(TEMPLATE)}, StackName=STACK, TemplateStage="Original")
    fake.expect_change_set(TEMPLATE, Status="FAILED", ExecutionStatus="UNAVAILABLE", StatusReason=NO_CHANGES)
    fake.expect("delete_change_set", StackName=STACK, ChangeSetName=MINE)
    fake.expect("describe_stacks", described("UPDATE_COMPLETE", False), StackName=STACK)
    fake.expect_stack_policy(TEMPLATE)
    fake.expect("update_termination_protection", StackName=STACK, EnableTerminationProtection=True)
    assert fake.deploy(env_file=env_file) == 0
    fake.stubber.assert_no_pending_responses()
    printed = fake.printed()
    assert printed.startswith(f"{STACK} is UPDATE_IN_PROGRESS (another deploy, or one that was interrupted): "
                              "following it to the end first\n")
    assert "UPDATE_COMPLETE        PhiKey (AWS::KMS::Key)" in printed
    assert env_file.read_text() == "AWS_KMS_KEY_ID=k-1\nAWS_KMS_REGION=us-west-2\n"


# -- finding 4: each deploy follows only its own change set --------------------------------------

def test_a_deploy_reports_only_its_own_events_and_says_when_another_overtook_it(fake: Fake) -> None:
    new = variant(describe_key)
    expect_update_until_execute(fake, new)
    theirs = "scrybe-kms-20261128-120001-theirs01"
    fake.expect("describe_stack_events", {"StackEvents": [
        mine(5, "AuditTrail", "UPDATE_IN_PROGRESS", "AWS::CloudTrail::Trail", token=theirs),
        {**stack_event(4, "UPDATE_IN_PROGRESS"), "ClientRequestToken": theirs},
        {**stack_event(3, "UPDATE_COMPLETE"), "ClientRequestToken": MINE},
        mine(2, "PhiKey", "UPDATE_COMPLETE"), {**stack_event(1, "UPDATE_IN_PROGRESS"), "ClientRequestToken": MINE},
        settled(0, "X")]}, StackName=STACK)
    fake.expect("describe_stacks", described("UPDATE_IN_PROGRESS", False), StackName=STACK)
    fake.expect("update_termination_protection", StackName=STACK, EnableTerminationProtection=True)
    assert fake.deploy(new) == 0
    fake.stubber.assert_no_pending_responses()
    printed = fake.printed()
    assert "AuditTrail" not in printed  # the other deploy's resource
    assert "another operation (scrybe-kms-20261128-120001-theirs01) started on scrybe-kms-production" in printed
    assert f"{STACK}: UPDATE_COMPLETE" in printed  # its own result, not the other one's


def test_a_change_set_made_obsolete_by_another_deploy_is_deleted_and_reported(fake: Fake) -> None:
    new = variant(describe_key)
    fake.expect_deployed()
    fake.expect_change_set(new, **changes(("Modify", "PhiKey", "AWS::KMS::Key", "False")))
    fake.expect_stack_policy(new)
    fake.expect("describe_stack_events", {"StackEvents": [settled(0, "UPDATE_COMPLETE")]}, StackName=STACK)
    fake.expect_error("execute_change_set", "InvalidChangeSetStatus",
                      "ChangeSet [x] cannot be executed in its current status of [OBSOLETE]")
    fake.expect("delete_change_set", StackName=STACK, ChangeSetName=MINE)
    with pytest.raises(DeployError, match=r"another deploy or update changed scrybe-kms-production after it was "
                                          r"made, so it is obsolete\. Nothing was executed"):
        fake.deploy(new)
    fake.stubber.assert_no_pending_responses()


# -- finding 1: names that exist are found before anything is created ----------------------------

RETAINED = {"alias/scrybe-phi-master-key-production": "phi-key-1", "alias/scrybe-phi-audit-key-production": "audit-1"}


def expect_retained_lookups(fake: Fake, present: bool = True, trail: bool = False) -> None:
    """The preflight's (or --adopt's) lookups, in logical-id order per service."""
    resources = TEMPLATE["Resources"]
    for title in sorted(resources):
        kind, props = resources[title]["Type"], resources[title].get("Properties", {})
        if kind == "AWS::KMS::Alias":
            if present:
                fake.stub("kms").add_response("describe_key", {"KeyMetadata": {
                    "KeyId": RETAINED[props["AliasName"]], "KeyState": "Enabled"}}, {"KeyId": props["AliasName"]})
            else:
                fake.stub("kms").add_client_error("describe_key", "NotFoundException", "no alias", 400)
        elif kind == "AWS::S3::Bucket":
            if present:
                fake.stub("s3").add_response("head_bucket", {}, {"Bucket": ANY})
            else:
                fake.stub("s3").add_client_error("head_bucket", "404", "Not Found", 404)
        elif kind == "AWS::Logs::LogGroup":
            groups = [{"logGroupName": props["LogGroupName"]}] if present else []
            fake.stub("logs").add_response("describe_log_groups", {"logGroups": groups},
                                           {"logGroupNamePrefix": props["LogGroupName"]})
        elif kind == "AWS::CloudTrail::Trail" and trail:
            fake.stub("cloudtrail").add_client_error("get_trail", "TrailNotFoundException", "none", 404)


def test_retained_names_stop_a_new_stack_before_any_key_is_created(fake: Fake) -> None:
    """Issue 13, finding 1: a deleted stack's retained aliases, buckets and log group made the
    create fail after it had made two new keys. Now: one message, nothing created, --adopt named."""
    fake.expect_missing()
    expect_retained_lookups(fake, trail=True)
    with pytest.raises(DeployError) as raised:
        fake.deploy()
    message = str(raised.value)
    assert message.startswith(f"cannot create {STACK}: names it would create already exist outside it")
    assert "Nothing was created or changed." in message
    assert "PhiKeyAliasScrybePhiMasterKeyProduction: KMS alias alias/scrybe-phi-master-key-production " \
           "(points at key phi-key-1, Enabled)" in message
    assert "AuditTrailLogGroup: log group /scrybe/kms/production/cloudtrail" in message
    assert message.rstrip().endswith("scrybe-kms deploy production --adopt")
    assert "CreateChangeSet" not in fake.calls and "CreateKey" not in fake.calls


# -- item 2: --adopt imports what a deleted stack retained, then updates -------------------------

def import_template() -> dict[str, Any]:
    retained = {t: r for t, r in TEMPLATE["Resources"].items() if r.get("DeletionPolicy") == "Retain"}
    return {"Description": TEMPLATE["Description"], "Resources": copy.deepcopy(retained)}


def test_adopt_imports_the_retained_resources_and_then_creates_only_the_rest(fake: Fake) -> None:
    imported = import_template()
    imports = [{"ResourceType": imported["Resources"][t]["Type"], "LogicalResourceId": t,
                "ResourceIdentifier": ident} for t, ident in sorted({
                    "AuditKey": {"KeyId": "audit-1"}, "PhiKey": {"KeyId": "phi-key-1"},
                    "AuditKeyAliasScrybePhiAuditKeyProduction": {"AliasName": "alias/scrybe-phi-audit-key-production"},
                    "PhiKeyAliasScrybePhiMasterKeyProduction": {"AliasName": "alias/scrybe-phi-master-key-production"},
                    "AuditLogBucket": {"BucketName": "scrybe-phi-audit-logs-123456789012-production"},
                    "AuditLogAccessLogBucket": {"BucketName": "scrybe-phi-audit-access-logs-123456789012-production"},
                    "AuditLogBucketPolicy": {"Bucket": "scrybe-phi-audit-logs-123456789012-production"},
                    "AuditLogAccessLogBucketPolicy": {
                        "Bucket": "scrybe-phi-audit-access-logs-123456789012-production"},
                    "AuditTrailLogGroup": {"LogGroupName": "/scrybe/kms/production/cloudtrail"}}.items())]
    fake.expect_missing()
    expect_retained_lookups(fake)
    for _ in range(2):
        fake.stub("s3").add_response("get_bucket_policy", {"Policy": "{}"}, {"Bucket": ANY})
    fake.expect("create_change_set", {"Id": "cs"}, StackName=STACK, ChangeSetName=MINE, ChangeSetType="IMPORT",
                TemplateBody=json.dumps(imported, separators=(",", ":"), sort_keys=True), Capabilities=CAPABILITIES,
                Description="scrybe-kms deploy production --adopt", ClientToken=MINE, ResourcesToImport=imports)
    fake.expect("describe_change_set", {"Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE", **changes(
        *[("Import", i["LogicalResourceId"], i["ResourceType"], "") for i in imports])},
        StackName=STACK, ChangeSetName=MINE)
    fake.expect("describe_stack_events", {"StackEvents": []}, StackName=STACK)
    fake.expect("execute_change_set", StackName=STACK, ChangeSetName=MINE, ClientRequestToken=MINE)
    fake.expect("describe_stack_events", {"StackEvents": [settled(2, "IMPORT_COMPLETE"),
                                                          event(1, "PhiKey", "IMPORT_COMPLETE", "AWS::KMS::Key")]},
                StackName=STACK)
    fake.expect("describe_stacks", described("IMPORT_COMPLETE", False), StackName=STACK)
    fake.expect_stack_policy(imported)
    # ... then the ordinary update to the full template, which adds the trail, role, filters, outputs.
    fake.expect_stack("IMPORT_COMPLETE", protected=False)
    fake.expect("get_template", {"TemplateBody": json.dumps(imported)}, StackName=STACK, TemplateStage="Original")
    fake.stub("cloudtrail").add_client_error("get_trail", "TrailNotFoundException", "none", 404)
    added = sorted(set(TEMPLATE["Resources"]) - set(imported["Resources"]))
    fake.expect_change_set(TEMPLATE, **changes(*[("Add", t, TEMPLATE["Resources"][t]["Type"], "") for t in added]))
    fake.expect_stack_policy(TEMPLATE)
    fake.expect("describe_stack_events", {"StackEvents": [settled(2, "IMPORT_COMPLETE")]}, StackName=STACK)
    fake.expect("execute_change_set", StackName=STACK, ChangeSetName=MINE, ClientRequestToken=MINE)
    fake.expect("describe_stack_events", {"StackEvents": [settled(3, "UPDATE_COMPLETE"), settled(2, "X")]},
                StackName=STACK)
    fake.expect("describe_stacks", described("UPDATE_COMPLETE", False), StackName=STACK)
    fake.expect("update_termination_protection", StackName=STACK, EnableTerminationProtection=True)
    assert fake.deploy(adopt=True) == 0
    fake.stubber.assert_no_pending_responses()
    for _, stubber in fake.services.values():
        stubber.assert_no_pending_responses()
    printed = fake.printed()
    assert "importing what a deleted stack retained; no key is created" in printed
    assert "  found PhiKey (AWS::KMS::Key): phi-key-1" in printed
    assert "  import    PhiKey" in printed
    assert printed.index(f"{STACK}: IMPORT_COMPLETE; now updating it to the full template") < printed.index(
        f"update {STACK} in us-west-2")
    assert "  add       AuditTrail " in printed and "  add       PhiKey " not in printed
    kms_calls = [c for c in fake.calls if c in ("CreateKey", "DescribeKey", "ScheduleKeyDeletion")]
    assert kms_calls == ["DescribeKey", "DescribeKey"]  # found, never created


def test_adopt_refuses_when_a_key_cannot_be_found(fake: Fake) -> None:
    fake.expect_missing()
    expect_retained_lookups(fake, present=False)
    with pytest.raises(DeployError, match=r"cannot adopt into scrybe-kms-production; nothing was created or changed:"
                                          r"\n  no retained key was found for AuditKey, PhiKey"):
        fake.deploy(adopt=True)
    assert "CreateChangeSet" not in fake.calls


def test_adopt_refuses_an_existing_stack(fake: Fake) -> None:
    fake.expect_stack("UPDATE_COMPLETE")
    with pytest.raises(DeployError, match="--adopt brings back what a deleted stack retained, but "
                                          "scrybe-kms-production exists"):
        fake.deploy(adopt=True)


def test_the_import_template_holds_only_retained_resources_without_outputs(fake: Fake) -> None:
    """What CloudFormation requires of an import change set: only the imported resources, each
    with a DeletionPolicy, nothing else (no outputs)."""
    expect_retained_lookups(fake)
    for _ in range(2):
        fake.stub("s3").add_response("get_bucket_policy", {"Policy": "{}"}, {"Bucket": ANY})
    aws = AwsSession(fake.cf, "us-west-2", "123456789012", make_client=fake.client)
    with fake.stub("kms"), fake.stub("s3"), fake.stub("logs"):
        adoption = find_retained(aws, STACK, TEMPLATE)
    assert adoption.template == import_template()
    assert all(r["DeletionPolicy"] == "Retain" for r in adoption.template["Resources"].values())
    assert {r["LogicalResourceId"] for r in adoption.resources} == set(adoption.template["Resources"])


# -- findings 9: refusal gaps --------------------------------------------------------------------

def test_dropping_update_replace_policy_retain_is_refused(fake: Fake) -> None:
    fake.expect_deployed()
    with pytest.raises(Refused) as raised:
        fake.deploy(variant(lambda t: t["Resources"]["PhiKey"].pop("UpdateReplacePolicy")))
    assert "PhiKey: its UpdateReplacePolicy would no longer be Retain" in str(raised.value)
    assert fake.calls == ["DescribeStacks", "GetTemplate"]


def test_a_template_built_for_another_account_is_refused_before_any_call(fake: Fake) -> None:
    def elsewhere(t: dict[str, Any]) -> None:
        t["Rules"]["DeployOnlyToConfiguredAccount"]["Assertions"][0]["Assert"]["Fn::Equals"][1] = "210987654321"

    with pytest.raises(Refused) as raised:
        fake.deploy(variant(elsewhere))
    assert "its template's Rules do not hold in us-west-2, account 123456789012" in str(raised.value)
    assert "DeployOnlyToConfiguredAccount: This template was built for account 123456789012" in str(raised.value)
    assert "(this session: 123456789012)" in str(raised.value)
    assert fake.calls == []


# -- finding 7: templates that are not templates ---------------------------------------------------

@pytest.mark.parametrize(("body", "message"), [
    ("5", "holds a int, not a mapping with Resources"),
    ("null", "holds a NoneType, not a mapping with Resources"),
    ('{"Resources": []}', "Resources must be a non-empty mapping"),
    ('{"Resources": {"K": 5}}', "resource K has no Type"),
    ("Resources: [oops", "neither JSON"),
    (b"\xff\xfe", "could not read --template-file"),
])
def test_a_template_file_that_is_not_a_template_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             body: str | bytes, message: str) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    assert main(["deploy", "production", "--stacks", str(STACKS), "--template-file", str(path)]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_yaml_template_file_is_read_with_its_short_tags(tmp_path: Path) -> None:
    from cfn_flip import to_yaml

    from scrybe_kms.deploy.templates import read_template

    path = tmp_path / "t.yaml"
    path.write_text(to_yaml(json.dumps(TEMPLATE)))
    assert "!GetAtt" in path.read_text() or "!Ref" in path.read_text()
    assert read_template(path, "--template-file") == TEMPLATE


def test_the_import_change_set_for_plan_only_leaves_nothing(fake: Fake) -> None:
    """--adopt --plan shows the import and deletes it with the empty stack."""
    expect_retained_lookups(fake)
    for _ in range(2):
        fake.stub("s3").add_response("get_bucket_policy", {"Policy": "{}"}, {"Bucket": ANY})
    fake.expect_missing()
    fake.expect("create_change_set", {"Id": "cs"}, StackName=STACK, ChangeSetName=MINE, ChangeSetType="IMPORT",
                TemplateBody=ANY, Capabilities=CAPABILITIES, Description="scrybe-kms deploy production --adopt",
                ClientToken=MINE, ResourcesToImport=ANY)
    fake.expect("describe_change_set", {"Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE",
                                        **changes(("Import", "PhiKey", "AWS::KMS::Key", ""))},
                StackName=STACK, ChangeSetName=MINE)
    fake.expect("delete_change_set", StackName=STACK, ChangeSetName=MINE)
    fake.expect_stack("REVIEW_IN_PROGRESS")
    fake.expect("delete_stack", StackName=STACK)
    assert fake.deploy(adopt=True, plan_only=True) == 0
    fake.stubber.assert_no_pending_responses()
    assert fake.printed().splitlines()[-2:] == [
        "plan only: nothing was imported",
        f"the update of {STACK} to its full template is planned once the import has run"]
    assert "ExecuteChangeSet" not in fake.calls
    assert DESCRIPTIONS[STACK] and stack_policy(TEMPLATE)  # (the helpers' own sanity)


# -- finding 6: an unusable --env-file is found before the stack is touched -----------------------

@pytest.mark.parametrize("kind", ["directory", "not UTF-8", "missing directory"])
def test_an_unusable_env_file_stops_the_deploy_before_any_call(fake: Fake, kind: str) -> None:
    path = fake.tmp_path / ".env"
    if kind == "directory":
        path.mkdir()
    elif kind == "not UTF-8":
        path.write_bytes(b"A=\xff\n")
    else:
        path = fake.tmp_path / "nowhere" / ".env"
    with pytest.raises(DeployError, match="--env-file"):
        fake.deploy(env_file=path)
    assert fake.calls == []


def test_a_name_aws_would_reject_cannot_exist_and_is_left_to_cloudformation(fake: Fake) -> None:
    """botocore refuses an invalid bucket name before sending it: nothing to look up."""
    from scrybe_kms.deploy.preflight import lookup

    aws = AwsSession(fake.cf, "us-west-2", "123456789012", make_client=fake.client)
    assert lookup(aws, "AuditLogAccessLogBucket", "AWS::S3::Bucket", "Not_A_Valid_Bucket!") is None


def test_losing_aws_before_executing_says_nothing_was_executed(fake: Fake) -> None:
    new = variant(describe_key)
    fake.expect_deployed()
    fake.expect("create_change_set", {"Id": "cs"}, StackName=STACK, ChangeSetName=MINE, ChangeSetType="UPDATE",
                TemplateBody=ANY, Capabilities=CAPABILITIES, Description=DESCRIPTIONS[STACK], ClientToken=MINE)
    throttle(fake, "describe_change_set", 8, StackName=STACK, ChangeSetName=MINE)
    with pytest.raises(LostTrack) as raised:
        fake.deploy(new)
    fake.stubber.assert_no_pending_responses()
    assert f"Nothing was executed: change set {MINE} of {STACK} was left unexecuted" in str(raised.value)
    assert "may still be in progress" not in str(raised.value)
