"""``deploy()`` end to end against botocore's Stubber: no network, no emulator.

A fake session hands ``deploy()`` a stubbed CloudFormation client. The Stubber answers only the
calls queued here, in this order, with these parameters; an unexpected call fails the test, and
``assert_no_pending_responses`` fails it if an expected call never came. ``calls`` records every
operation the client was asked for (before the Stubber checks it), and ``stacks`` the stack each
call named, so each test can also say what must NOT have happened.

Most tests deploy the key stack alone (``stack="keys"``, the Fake's default); the tests at the end
deploy both stacks, or the alarm stack alone.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from scrybe_kms.config import load_stack
from scrybe_kms.deploy import DeployError, DeployOptions, Refused, deploy, env_config
from scrybe_kms.deploy.changeset import CAPABILITIES
from scrybe_kms.deploy.session import AwsSession
from scrybe_kms.derived.stack_policy import stack_policy
from scrybe_kms.template import render, render_alarms, render_filters
from tests.helpers import SINGLE_REGION_STACKS as STACKS
from tests.test_deploy_events import STACK, STACK_ID, START, event, stack_event

CFG = load_stack(STACKS / "production.py")
TEMPLATE: dict[str, Any] = json.loads(render(CFG))
ALARM_STACK = f"{STACK}-alarms"
ALARMS: dict[str, Any] = json.loads(render_alarms(CFG))
FILTER_STACK = f"{STACK}-filters"
FILTERS: dict[str, Any] = json.loads(render_filters(CFG))
TEMPLATES = {STACK: TEMPLATE, FILTER_STACK: FILTERS, ALARM_STACK: ALARMS}
DESCRIPTIONS = {STACK: "scrybe-kms deploy production", FILTER_STACK: "scrybe-kms deploy production (filter stack)",
                ALARM_STACK: "scrybe-kms deploy production (alarm stack)"}
#: What the key stack exports and the alarm stack imports.
EXPORTS = [{"ExportingStackId": STACK_ID, "Name": f"{STACK}-{name}", "Value": f"arn:aws:kms:us-west-2:1:key/{name}"}
           for name in ("KmsKeyArn", "AuditKeyArn")] + [
    {"ExportingStackId": STACK_ID.replace(STACK, f"{STACK}-alarms"), "Name": f"{STACK}-{name}",
     "Value": f"arn:aws:sns:us-west-2:1:{name}"} for name in ("AlarmTopicArn", "WatchdogTopicArn")]
NO_CHANGES = "The submitted information didn't contain changes. Submit different information to create a change set."
#: How each named type's lookup answers "no such thing": (service, operation, error code or "" for an
#: empty answer).
FREE = {"AWS::KMS::Alias": ("kms", "describe_key", "NotFoundException"),
        "AWS::S3::Bucket": ("s3", "head_bucket", "404"),
        "AWS::Logs::LogGroup": ("logs", "describe_log_groups", ""),
        "AWS::CloudTrail::Trail": ("cloudtrail", "get_trail", "TrailNotFoundException"),
        "AWS::SNS::Topic": ("sns", "get_topic_attributes", "NotFound")}
OUTPUTS = [{"OutputKey": "KmsKeyId", "OutputValue": "k-1"},
           {"OutputKey": "EnvironmentConfig", "OutputValue": "AWS_KMS_KEY_ID=k-1\nAWS_KMS_REGION=us-west-2\n"}]


@dataclass
class Fake:
    """A stubbed CloudFormation client behind a fake session, and what the deploy did with it."""

    cf: Any
    stubber: Stubber
    tmp_path: Path
    calls: list[str] = field(default_factory=list)
    stacks: list[str | None] = field(default_factory=list)
    out: io.StringIO = field(default_factory=io.StringIO)

    services: dict[str, Any] = field(default_factory=dict)

    def deploy(self, template: dict[str, Any] | None = None, alarms: dict[str, Any] | None = None,
               **options: Any) -> int:
        """``deploy()`` of the key stack alone unless ``stack=`` says otherwise; ``template`` and
        ``alarms`` go to the deploy as --template-file and --alarms-template-file."""
        for given, option in ((template, "template_file"), (alarms, "alarms_template_file")):
            if given is not None:
                path = self.tmp_path / f"{option}.json"
                path.write_text(json.dumps(given))
                options[option] = path
        options.setdefault("stack", "keys")
        opts = DeployOptions("production", stacks_dir=STACKS, poll_seconds=0, **options)
        with self.stubber, contextlib.ExitStack() as stubbed:
            for _, stubber in self.services.values():
                stubbed.enter_context(stubber)
            return deploy(opts, self.out, session_factory=self.session)

    def session(self, opts: DeployOptions, cfg: Any) -> AwsSession:
        assert cfg.environment == opts.environment == "production"
        return AwsSession(self.cf, region="us-west-2", account="123456789012", make_client=self.client)

    def client(self, service: str) -> Any:
        """A stubbed client of another service (KMS, S3, ...), made on first use."""
        if service not in self.services:
            made = boto3.client(service, region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x")
            self.services[service] = (made, Stubber(made))

            def record(model: Any, params: dict[str, Any], **_: Any) -> None:
                self.calls.append(model.name)
                self.stacks.append(None)

            made.meta.events.register(f"provide-client-params.{made.meta.service_model.endpoint_prefix}.*", record)
        return self.services[service][0]

    def stub(self, service: str) -> Stubber:
        self.client(service)
        return self.services[service][1]

    def expect_names_free(self, template: dict[str, Any] = TEMPLATE) -> None:
        """The preflight finds none of the names a new stack would create."""
        for title in sorted(template["Resources"]):
            kind = template["Resources"][title]["Type"]
            if kind in FREE:
                service, operation, code = FREE[kind]
                if code:
                    self.stub(service).add_client_error(operation, code, "not found", 404)
                else:
                    self.stub(service).add_response(operation, {"logGroups": []})

    def expect(self, operation: str, response: dict[str, Any] | None = None, **params: Any) -> None:
        self.stubber.add_response(operation, response or {}, params or None)

    def expect_error(self, operation: str, code: str, message: str, **params: Any) -> None:
        self.stubber.add_client_error(operation, code, message, 400, expected_params=params or None)

    # -- the conversations deploy() has, one helper per step ------------------------------------
    def expect_stack(self, status: str, protected: bool = True, stack: str = STACK) -> None:
        self.expect("describe_stacks", described(status, protected, stack), StackName=stack)

    def expect_missing(self, stack: str = STACK) -> None:
        self.expect_error("describe_stacks", "ValidationError", f"Stack with id {stack} does not exist",
                          StackName=stack)

    def expect_deployed(self, status: str = "UPDATE_COMPLETE", stack: str = STACK) -> None:
        self.expect_stack(status, stack=stack)
        self.expect("get_template", {"TemplateBody": json.dumps(TEMPLATES[stack])}, StackName=stack,
                    TemplateStage="Original")

    def expect_change_set(self, new: dict[str, Any], change_type: str = "UPDATE", stack: str = STACK,
                          **result: Any) -> None:
        self.expect("create_change_set", {"Id": "cs-arn"}, StackName=stack, ChangeSetName=ANY,
                    ChangeSetType=change_type, TemplateBody=json.dumps(new, separators=(",", ":"), sort_keys=True),
                    Capabilities=CAPABILITIES, Description=DESCRIPTIONS[stack], ClientToken=ANY)
        self.expect("describe_change_set", {"Status": "CREATE_PENDING"}, StackName=stack, ChangeSetName=ANY)
        self.expect("describe_change_set", {"ExecutionStatus": "AVAILABLE", "Status": "CREATE_COMPLETE", **result},
                    StackName=stack, ChangeSetName=ANY)

    def expect_stack_policy(self, template: dict[str, Any], stack: str = STACK) -> None:
        self.expect("set_stack_policy", StackName=stack, StackPolicyBody=json.dumps(stack_policy(template)))

    def expect_execution(self, events_newest_first: list[dict[str, Any]], final: str, stack: str = STACK) -> None:
        self.expect("describe_stack_events", {"StackEvents": [settled(0, "UPDATE_COMPLETE", stack)]}, StackName=stack)
        self.expect("execute_change_set", StackName=stack, ChangeSetName=ANY, ClientRequestToken=ANY)
        self.expect("describe_stack_events", {"StackEvents": [*events_newest_first, settled(0, "X", stack)]},
                    StackName=stack)
        self.expect("describe_stacks", described(final, False, stack), StackName=stack)

    def expect_exports(self, exports: list[dict[str, str]] = EXPORTS) -> None:
        self.expect("list_exports", {"Exports": exports})

    def printed(self) -> str:
        return self.out.getvalue()


def described(status: str, protected: bool = True, stack: str = STACK) -> dict[str, Any]:
    """DescribeStacks; only the key stack has outputs."""
    return {"Stacks": [{"StackName": stack, "StackId": STACK_ID.replace(STACK, stack), "CreationTime": START,
                        "StackStatus": status, "EnableTerminationProtection": protected,
                        "Outputs": OUTPUTS if stack == STACK else []}]}


def settled(number: int, status: str, stack: str = STACK) -> dict[str, Any]:
    """The stack's own event."""
    return {**event(number, stack, status, "AWS::CloudFormation::Stack"), "StackName": stack}


def changes(*rows: tuple[str, str, str, str]) -> dict[str, Any]:
    return {"Changes": [{"Type": "Resource", "ResourceChange": {
        "Action": action, "LogicalResourceId": logical, "ResourceType": kind,
        **({"Replacement": replacement} if replacement else {})}} for action, logical, kind, replacement in rows]}


def variant(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    new = copy.deepcopy(TEMPLATE)
    change(new)
    return new


def describe_key(t: dict[str, Any]) -> None:
    """A safe update of a protected resource: the key's description is not create-only."""
    t["Resources"]["PhiKey"]["Properties"]["Description"] = "PHI key, described anew"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Fake]:
    cf = boto3.client("cloudformation", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x")
    found = Fake(cf, Stubber(cf), tmp_path)

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        found.calls.append(model.name)
        found.stacks.append(params.get("StackName"))

    cf.meta.events.register("provide-client-params.cloudformation.*", record)
    yield found


# -- (a) refused locally: no change set is ever created ---------------------------------------

@pytest.mark.parametrize(("change", "problem"), [
    (lambda t: t["Resources"]["PhiKey"].pop("DeletionPolicy"), "PhiKey: its DeletionPolicy would no longer be Retain"),
    (lambda t: t["Resources"].pop("PhiKey"), "PhiKey: it would be removed from the stack"),
])
def test_local_refusal_stops_before_any_change_set_exists(fake: Fake, change: Any, problem: str) -> None:
    fake.expect_deployed()
    with pytest.raises(Refused) as raised:
        fake.deploy(variant(change))
    fake.stubber.assert_no_pending_responses()
    assert raised.value.exit_code == 3
    assert problem in str(raised.value) and "nothing was created or executed" in str(raised.value)
    assert fake.calls == ["DescribeStacks", "GetTemplate"]


def test_an_unreadable_schema_refuses_before_any_change_set_exists(
        fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: without cfn-lint's schema the local check cannot run, so nothing does."""
    import cfnlint.schema

    from scrybe_kms.deploy.refusals import _create_only

    class Broken:
        def get_resource_schema(self, region: str, resource_type: str) -> Any:
            raise RuntimeError("schema store moved")

    _create_only.cache_clear()
    monkeypatch.setattr(cfnlint.schema, "PROVIDER_SCHEMA_MANAGER", Broken())
    fake.expect_deployed()
    try:
        with pytest.raises(DeployError, match=r"cannot check whether \w+ \(AWS::[\w:]+\) would be replaced: .*"
                                              r"schema store moved.*; refusing") as raised:
            fake.deploy(variant(describe_key))
    finally:
        _create_only.cache_clear()
    assert raised.value.exit_code == 1
    assert "CreateChangeSet" not in fake.calls


# -- (b) an update: the stack policy is in place before the change set executes -----------------

def test_update_sets_the_stack_policy_before_executing(fake: Fake) -> None:
    new = variant(describe_key)
    fake.expect_deployed()
    fake.expect_change_set(new, **changes(("Modify", "PhiKey", "AWS::KMS::Key", "False")))
    fake.expect_stack_policy(new)
    fake.expect_execution([stack_event(2, "UPDATE_COMPLETE"), event(1, "PhiKey", "UPDATE_COMPLETE", "AWS::KMS::Key")],
                          "UPDATE_COMPLETE")
    fake.expect("update_termination_protection", StackName=STACK, EnableTerminationProtection=True)
    assert fake.deploy(new) == 0
    fake.stubber.assert_no_pending_responses()
    assert fake.calls.index("SetStackPolicy") < fake.calls.index("ExecuteChangeSet")
    assert fake.calls.count("SetStackPolicy") == 1
    printed = fake.printed()
    assert printed.startswith("update scrybe-kms-production in us-west-2 (account 123456789012)\n")
    assert "  modify    PhiKey  AWS::KMS::Key" in printed
    assert "UPDATE_COMPLETE        PhiKey (AWS::KMS::Key)" in printed
    assert f"{STACK}: UPDATE_COMPLETE\noutputs:\n  KmsKeyId = k-1\n" in printed


def test_update_writes_the_env_file(fake: Fake) -> None:
    new = variant(describe_key)
    env_file = fake.tmp_path / ".env"
    env_file.write_text("OTHER=1\n")
    fake.expect_deployed()
    fake.expect_change_set(new, **changes(("Modify", "PhiKey", "AWS::KMS::Key", "False")))
    fake.expect_stack_policy(new)
    fake.expect_execution([stack_event(1, "UPDATE_COMPLETE")], "UPDATE_COMPLETE")
    fake.expect("update_termination_protection", StackName=STACK, EnableTerminationProtection=True)
    assert fake.deploy(new, env_file=env_file) == 0
    assert env_file.read_text() == "OTHER=1\nAWS_KMS_KEY_ID=k-1\nAWS_KMS_REGION=us-west-2\n"


# -- (c) no changes: the change set goes, the guards stay -------------------------------------

@pytest.mark.parametrize("reason", [NO_CHANGES, "No updates are to be performed."])
def test_no_changes_deletes_the_change_set_and_applies_the_guards(fake: Fake, reason: str) -> None:
    fake.expect_deployed()
    fake.expect_change_set(TEMPLATE, Status="FAILED", ExecutionStatus="UNAVAILABLE", StatusReason=reason)
    fake.expect("delete_change_set", StackName=STACK, ChangeSetName=ANY)
    fake.expect("describe_stacks", described("UPDATE_COMPLETE", protected=False), StackName=STACK)
    fake.expect_stack_policy(TEMPLATE)
    fake.expect("update_termination_protection", StackName=STACK, EnableTerminationProtection=True)
    assert fake.deploy() == 0
    fake.stubber.assert_no_pending_responses()
    assert "ExecuteChangeSet" not in fake.calls
    assert fake.printed().endswith(f"no changes: {STACK} is up to date\n")
    assert "plan:" not in fake.printed()


def test_a_change_set_that_failed_otherwise_is_an_error(fake: Fake) -> None:
    fake.expect_deployed()
    fake.expect_change_set(TEMPLATE, Status="FAILED", ExecutionStatus="UNAVAILABLE",
                           StatusReason="Template format error: Unresolved resource dependencies [X]")
    fake.expect("delete_change_set", StackName=STACK, ChangeSetName=ANY)
    with pytest.raises(DeployError, match="could not create the change set: Template format error") as raised:
        fake.deploy()
    fake.stubber.assert_no_pending_responses()
    assert type(raised.value) is DeployError
    assert "SetStackPolicy" not in fake.calls


# -- (d) the change set itself says the key would be replaced -----------------------------------

def test_change_set_replacing_the_key_is_refused_deleted_and_not_executed(fake: Fake) -> None:
    fake.expect_deployed()
    fake.expect_change_set(TEMPLATE, **changes(("Modify", "PhiKey", "AWS::KMS::Key", "True"),
                                               ("Modify", "AuditTrail", "AWS::CloudTrail::Trail", "False")))
    fake.expect("delete_change_set", StackName=STACK, ChangeSetName=ANY)
    with pytest.raises(Refused) as raised:
        fake.deploy()
    fake.stubber.assert_no_pending_responses()
    assert raised.value.exit_code == 3
    assert "PhiKey: the change set replaces it (Replacement: True)" in str(raised.value)
    assert "the change set was deleted" in str(raised.value)
    assert "ExecuteChangeSet" not in fake.calls and "SetStackPolicy" not in fake.calls
    assert "  replace   PhiKey" in fake.printed()  # the plan was shown before the refusal


# -- (e) the update fails and CloudFormation rolls back ----------------------------------------

def test_rolled_back_update_names_the_failed_events(fake: Fake) -> None:
    new = variant(describe_key)
    fake.expect_deployed()
    fake.expect_change_set(new, **changes(("Modify", "PhiKey", "AWS::KMS::Key", "False")))
    fake.expect_stack_policy(new)
    fake.expect_execution([stack_event(4, "UPDATE_ROLLBACK_COMPLETE"), stack_event(3, "UPDATE_ROLLBACK_IN_PROGRESS"),
                           event(2, "PhiKey", "UPDATE_FAILED", "AWS::KMS::Key", "Invalid parameter: Description"),
                           stack_event(1, "UPDATE_IN_PROGRESS")], "UPDATE_ROLLBACK_COMPLETE")
    with pytest.raises(DeployError) as raised:
        fake.deploy(new)
    fake.stubber.assert_no_pending_responses()
    message = str(raised.value)
    assert raised.value.exit_code == 1
    assert message.startswith(f"deploy failed: {STACK} is UPDATE_ROLLBACK_COMPLETE")
    assert "failing events:\n" in message
    assert "UPDATE_FAILED          PhiKey (AWS::KMS::Key) Invalid parameter: Description" in message
    assert "UpdateTerminationProtection" not in fake.calls  # nothing more after a failure


# -- (f) a stack that cannot be deployed to is reported before anything else -------------------

@pytest.mark.parametrize(("status", "message"), [
    ("ROLLBACK_COMPLETE", f"stack {STACK} is ROLLBACK_COMPLETE (its first create failed) and cannot be updated"),
    ("SOMETHING_NEW", "unknown stack status SOMETHING_NEW"),
])
def test_stack_that_cannot_be_updated_stops_everything(fake: Fake, status: str, message: str) -> None:
    fake.expect_stack(status)
    with pytest.raises(DeployError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fake.deploy()
    fake.stubber.assert_no_pending_responses()
    assert fake.calls == ["DescribeStacks"]


@pytest.mark.parametrize(("code", "message", "expected"), [
    ("ValidationError", "1 validation error detected: Value 'x!' at 'stackName' failed to satisfy constraint",
     "could not describe stack scrybe-kms-production (ValidationError): 1 validation error"),
    ("AccessDenied", f"User is not authorized to perform: cloudformation:DescribeStacks on {STACK}",
     "AWS denied the request to describe stack scrybe-kms-production (AccessDenied)"),
])
def test_only_the_missing_stack_answer_means_absent(fake: Fake, code: str, message: str, expected: str) -> None:
    fake.expect_error("describe_stacks", code, message, StackName=STACK)
    with pytest.raises(DeployError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        fake.deploy()
    assert fake.calls == ["DescribeStacks"]


# -- (g) plan only ---------------------------------------------------------------------------

def test_plan_only_creates_prints_and_deletes_the_change_set(fake: Fake) -> None:
    new = variant(describe_key)
    fake.expect_deployed()
    fake.expect_change_set(new, **changes(("Modify", "PhiKey", "AWS::KMS::Key", "False")))
    fake.expect("delete_change_set", StackName=STACK, ChangeSetName=ANY)
    assert fake.deploy(new, plan_only=True) == 0
    fake.stubber.assert_no_pending_responses()
    assert fake.printed().splitlines()[1:] == ["plan: 1 resource change(s)",
                                               "  modify    PhiKey  AWS::KMS::Key",
                                               "plan only: nothing was executed"]
    assert not {"ExecuteChangeSet", "SetStackPolicy", "UpdateTerminationProtection"} & set(fake.calls)


def test_plan_only_for_a_new_stack_also_removes_the_empty_review_stack(fake: Fake) -> None:
    fake.expect_error("describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist", StackName=STACK)
    fake.expect_names_free()
    fake.expect_change_set(TEMPLATE, "CREATE", **changes(("Add", "PhiKey", "AWS::KMS::Key", "")))
    fake.expect("delete_change_set", StackName=STACK, ChangeSetName=ANY)
    fake.expect_stack("REVIEW_IN_PROGRESS")
    fake.expect("delete_stack", StackName=STACK)
    assert fake.deploy(plan_only=True) == 0
    fake.stubber.assert_no_pending_responses()
    assert fake.printed().startswith(f"create {STACK} in us-west-2")


# -- a new stack --------------------------------------------------------------------------------

def test_create_sets_the_guards_once_the_stack_exists(fake: Fake) -> None:
    fake.expect_error("describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist", StackName=STACK)
    fake.expect_names_free()
    fake.expect_change_set(TEMPLATE, "CREATE", **changes(("Add", "PhiKey", "AWS::KMS::Key", "")))
    fake.expect_execution([stack_event(2, "CREATE_COMPLETE"), event(1, "PhiKey", "CREATE_COMPLETE", "AWS::KMS::Key")],
                          "CREATE_COMPLETE")
    fake.expect_stack_policy(TEMPLATE)
    fake.expect("update_termination_protection", StackName=STACK, EnableTerminationProtection=True)
    assert fake.deploy() == 0
    fake.stubber.assert_no_pending_responses()
    assert fake.calls.index("ExecuteChangeSet") < fake.calls.index("SetStackPolicy")
    assert "GetTemplate" not in fake.calls
    assert f"{STACK}: CREATE_COMPLETE" in fake.printed()


# -- env-config ---------------------------------------------------------------------------------

def test_env_config_prints_the_env_lines(fake: Fake) -> None:
    fake.expect_stack("UPDATE_COMPLETE")
    with fake.stubber:
        assert env_config(DeployOptions("production", stacks_dir=STACKS), fake.out, session_factory=fake.session) == 0
    assert fake.printed() == "AWS_KMS_KEY_ID=k-1\nAWS_KMS_REGION=us-west-2\n"


def test_env_config_of_a_missing_stack(fake: Fake) -> None:
    fake.expect_error("describe_stacks", "ValidationError", f"Stack with id {STACK} does not exist", StackName=STACK)
    with fake.stubber, pytest.raises(DeployError, match="does not exist in us-west-2; deploy it first"):
        env_config(DeployOptions("production", stacks_dir=STACKS), fake.out, session_factory=fake.session)


# -- both stacks: the key stack first, the alarm stack only after it succeeded ------------------

def rename_alarm_topic(t: dict[str, Any]) -> None:
    t["Resources"]["AlarmTopic"]["Properties"]["DisplayName"] = "Scrybe PHI key alarms (renamed)"


def alarm_variant(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    new = copy.deepcopy(ALARMS)
    change(new)
    return new


def expect_alarm_update(fake: Fake, new: dict[str, Any]) -> None:
    """The whole update of the alarm stack, from the exports check to termination protection."""
    fake.expect_exports()
    fake.expect_deployed(stack=ALARM_STACK)
    fake.expect_change_set(new, stack=ALARM_STACK, **changes(("Modify", "AlarmTopic", "AWS::SNS::Topic", "False")))
    fake.expect_stack_policy(new, stack=ALARM_STACK)
    fake.expect_execution([settled(2, "UPDATE_COMPLETE", ALARM_STACK),
                           event(1, "AlarmTopic", "UPDATE_COMPLETE", "AWS::SNS::Topic")],
                          "UPDATE_COMPLETE", ALARM_STACK)
    fake.expect("update_termination_protection", StackName=ALARM_STACK, EnableTerminationProtection=True)


def expect_unchanged(fake: Fake, stack: str) -> None:
    """A stack whose change set finds nothing to do (after the exports check, for those that import)."""
    if stack != STACK:
        fake.expect_exports()
    fake.expect_deployed(stack=stack)
    fake.expect_change_set(TEMPLATES[stack], stack=stack, Status="FAILED", ExecutionStatus="UNAVAILABLE",
                           StatusReason=NO_CHANGES)
    fake.expect("delete_change_set", StackName=stack, ChangeSetName=ANY)
    fake.expect("describe_stacks", described("UPDATE_COMPLETE", True, stack), StackName=stack)
    fake.expect_stack_policy(TEMPLATES[stack], stack=stack)


def test_the_alarm_stack_is_deployed_after_the_key_stack(fake: Fake) -> None:
    new, alarms = variant(describe_key), alarm_variant(rename_alarm_topic)
    env_file = fake.tmp_path / ".env"
    fake.expect_deployed()
    fake.expect_change_set(new, **changes(("Modify", "PhiKey", "AWS::KMS::Key", "False")))
    fake.expect_stack_policy(new)
    fake.expect_execution([stack_event(1, "UPDATE_COMPLETE")], "UPDATE_COMPLETE")
    fake.expect("update_termination_protection", StackName=STACK, EnableTerminationProtection=True)
    expect_alarm_update(fake, alarms)
    expect_unchanged(fake, FILTER_STACK)
    assert fake.deploy(new, alarms, stack="all", env_file=env_file) == 0
    fake.stubber.assert_no_pending_responses()
    # Every call for the key stack, then (after an exports check) the alarm stack's, then the filter stack's.
    first_alarm_call = fake.calls.index("ListExports")
    first_filter_call = fake.calls.index("ListExports", first_alarm_call + 1)
    assert set(fake.stacks[:first_alarm_call]) == {STACK}
    assert set(fake.stacks[first_alarm_call + 1:first_filter_call]) == {ALARM_STACK}
    assert set(fake.stacks[first_filter_call + 1:]) == {FILTER_STACK}
    assert [s for s, c in zip(fake.stacks, fake.calls, strict=True) if c == "ExecuteChangeSet"] == [STACK, ALARM_STACK]
    printed = fake.printed()
    assert printed.index(f"{STACK}: UPDATE_COMPLETE") < printed.index(f"update {ALARM_STACK} in us-west-2")
    assert "  modify    AlarmTopic  AWS::SNS::Topic" in printed
    assert printed.endswith(f"no changes: {FILTER_STACK} is up to date\n")
    # The .env lines come from the key stack, written once, before the alarm stack started.
    assert env_file.read_text() == "AWS_KMS_KEY_ID=k-1\nAWS_KMS_REGION=us-west-2\n"
    assert printed.count("wrote the AWS_KMS_* lines") == 1


def test_the_default_deploys_every_stack(fake: Fake) -> None:
    """``DeployOptions`` (and the command line) default to every stack; here none changes."""
    for stack in (STACK, ALARM_STACK, FILTER_STACK):
        expect_unchanged(fake, stack)
    assert DeployOptions("production").stack == "all"
    assert fake.deploy(stack="all") == 0
    fake.stubber.assert_no_pending_responses()
    assert fake.printed().splitlines()[-1] == f"no changes: {FILTER_STACK} is up to date"
    # None: ListExports names no stack
    assert fake.stacks == [STACK] * 8 + [None] + [ALARM_STACK] * 8 + [None] + [FILTER_STACK] * 8


@pytest.mark.parametrize("how", ["refused locally", "refused by the change set", "failed"])
def test_a_key_stack_that_is_refused_or_fails_leaves_the_alarm_stack_alone(fake: Fake, how: str) -> None:
    if how == "refused locally":
        fake.expect_deployed()
    elif how == "refused by the change set":
        fake.expect_deployed()
        fake.expect_change_set(TEMPLATE, **changes(("Modify", "PhiKey", "AWS::KMS::Key", "True")))
        fake.expect("delete_change_set", StackName=STACK, ChangeSetName=ANY)
    else:
        fake.expect_deployed()
        fake.expect_change_set(variant(describe_key), **changes(("Modify", "PhiKey", "AWS::KMS::Key", "False")))
        fake.expect_stack_policy(variant(describe_key))
        fake.expect_execution([stack_event(2, "UPDATE_ROLLBACK_COMPLETE"),
                               event(1, "PhiKey", "UPDATE_FAILED", "AWS::KMS::Key", "Invalid")],
                              "UPDATE_ROLLBACK_COMPLETE")
    template = {"refused locally": variant(lambda t: t["Resources"].pop("PhiKey")),
                "refused by the change set": TEMPLATE, "failed": variant(describe_key)}[how]
    with pytest.raises(Refused if how.startswith("refused") else DeployError) as raised:
        fake.deploy(template, stack="all")
    fake.stubber.assert_no_pending_responses()
    assert str(raised.value).startswith(f"refusing to deploy {STACK}:" if how.startswith("refused")
                                        else f"deploy failed: {STACK} is UPDATE_ROLLBACK_COMPLETE")
    # Not a single call for the alarm stack, not even the exports check before it.
    assert set(fake.stacks) == {STACK}
    assert "ListExports" not in fake.calls
    assert ALARM_STACK not in fake.printed()


def test_stack_alarms_touches_only_the_alarm_stack(fake: Fake) -> None:
    alarms = alarm_variant(rename_alarm_topic)
    expect_alarm_update(fake, alarms)
    assert fake.deploy(alarms=alarms, stack="alarms") == 0
    fake.stubber.assert_no_pending_responses()
    assert fake.calls[0] == "ListExports"
    assert set(fake.stacks[1:]) == {ALARM_STACK}
    assert fake.printed().startswith(f"update {ALARM_STACK} in us-west-2 (account 123456789012)\n")
    assert STACK + "\n" not in fake.printed() and f"{STACK} " not in fake.printed()


def test_stack_name_names_the_alarm_stack_too(fake: Fake) -> None:
    fake.expect_exports()
    fake.expect_stack("ROLLBACK_COMPLETE", stack="blue-alarms")
    with pytest.raises(DeployError, match="stack blue-alarms is ROLLBACK_COMPLETE"):
        fake.deploy(stack="alarms", stack_name="blue")
    assert fake.stacks == [None, "blue-alarms"]


def test_the_alarm_stack_needs_the_key_stacks_exports(fake: Fake) -> None:
    """Deployed alone before the key stack exports its ARNs: one clear line, no change set."""
    fake.expect_exports([EXPORTS[0], {"Name": "someone-elses-export", "Value": "x"}])
    with pytest.raises(DeployError) as raised:
        fake.deploy(stack="alarms")
    fake.stubber.assert_no_pending_responses()
    assert str(raised.value) == (f"{ALARM_STACK} imports {STACK}-AuditKeyArn, which no stack in us-west-2 exports: "
                                 f"deploy the stacks before it first (the key stack {STACK}, then its alarm stack)")
    assert fake.calls == ["ListExports"]


def test_plan_of_a_new_environment_plans_the_alarm_stack_later(fake: Fake) -> None:
    """The alarm stack's change set cannot exist before the key stack's exports do: say so, succeed."""
    fake.expect_missing()
    fake.expect_names_free()
    fake.expect_change_set(TEMPLATE, "CREATE", **changes(("Add", "PhiKey", "AWS::KMS::Key", "")))
    fake.expect("delete_change_set", StackName=STACK, ChangeSetName=ANY)
    fake.expect_stack("REVIEW_IN_PROGRESS")
    fake.expect("delete_stack", StackName=STACK)
    fake.expect_exports([])
    assert fake.deploy(stack="all", plan_only=True) == 0
    fake.stubber.assert_no_pending_responses()
    assert fake.printed().splitlines()[-2:] == [
        "plan only: nothing was executed",
        f"{ALARM_STACK} will be planned after the stacks before it are deployed: it imports {STACK}-AuditKeyArn, "
        f"{STACK}-KmsKeyArn, which they do not export yet"]
    assert FILTER_STACK not in fake.stacks and ALARM_STACK not in fake.stacks


def test_plan_of_both_existing_stacks_plans_both(fake: Fake) -> None:
    new, alarms = variant(describe_key), alarm_variant(rename_alarm_topic)
    fake.expect_deployed()
    fake.expect_change_set(new, **changes(("Modify", "PhiKey", "AWS::KMS::Key", "False")))
    fake.expect("delete_change_set", StackName=STACK, ChangeSetName=ANY)
    fake.expect_exports()
    fake.expect_deployed(stack=ALARM_STACK)
    fake.expect_change_set(alarms, stack=ALARM_STACK, **changes(("Modify", "AlarmTopic", "AWS::SNS::Topic", "False")))
    fake.expect("delete_change_set", StackName=ALARM_STACK, ChangeSetName=ANY)
    fake.expect_exports()
    fake.expect_deployed(stack=FILTER_STACK)
    fake.expect_change_set(FILTERS, stack=FILTER_STACK, Status="FAILED", ExecutionStatus="UNAVAILABLE",
                           StatusReason=NO_CHANGES)
    fake.expect("delete_change_set", StackName=FILTER_STACK, ChangeSetName=ANY)
    assert fake.deploy(new, alarms, stack="all", plan_only=True) == 0
    fake.stubber.assert_no_pending_responses()
    assert fake.printed().count("plan only: nothing was executed") == 2
    assert not {"ExecuteChangeSet", "SetStackPolicy", "UpdateTerminationProtection"} & set(fake.calls)


@pytest.mark.parametrize(("options", "message"), [
    ({"stack": "alarms", "template_file": Path("out/production.json")},
     "--template-file is for the key stack, which --stack alarms does not deploy"),
    ({"stack": "alarms", "env_file": Path(".env")}, "--env-file is for the key stack, which --stack alarms"),
    ({"stack": "keys", "alarms_template_file": Path("out/production.alarms.json")},
     "--alarms-template-file is for the alarm stack, which --stack keys does not deploy"),
    ({"stack": "all", "alarms_template_file": Path("no/such/file.json")},
     "could not read --alarms-template-file no/such/file.json"),
])
def test_options_that_cannot_work_stop_before_any_call(fake: Fake, options: dict[str, Any], message: str) -> None:
    with pytest.raises(DeployError, match=message):
        fake.deploy(**options)
    assert fake.calls == []


def test_the_command_line_passes_the_stack_choice_and_template_files(monkeypatch: pytest.MonkeyPatch) -> None:
    import scrybe_kms.deploy
    from scrybe_kms.cli import main
    from scrybe_kms.cli.main import STACK_CHOICES
    from scrybe_kms.deploy.options import STACK_CHOICES as OPTION_CHOICES

    seen: list[DeployOptions] = []
    monkeypatch.setattr(scrybe_kms.deploy, "deploy", lambda opts, out: seen.append(opts) or 0)
    assert main(["deploy", "production", "--stack", "alarms", "--alarms-template-file", "out/production.alarms.json",
                 "--stack-name", "blue"]) == 0
    assert main(["deploy", "production", "--template-file", "out/production.json", "--plan"]) == 0
    assert [(o.stack, o.template_file, o.alarms_template_file, o.stack_name, o.plan_only) for o in seen] == [
        ("alarms", None, Path("out/production.alarms.json"), "blue", False),
        ("all", Path("out/production.json"), None, None, True)]
    assert STACK_CHOICES == OPTION_CHOICES
