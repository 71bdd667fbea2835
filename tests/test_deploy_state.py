"""What a stack status, a change set and an AWS error mean to the deploy command."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from scrybe_kms.deploy import DeployError, DeployOptions
from scrybe_kms.deploy.changeset import ChangeSet
from scrybe_kms.deploy.session import open_session
from scrybe_kms.deploy.stack import StackState, is_missing_stack
from tests.helpers import config

#: Every StackStatus CloudFormation documents, and the situation it is for a deploy.
STATUSES = {
    "CREATE_IN_PROGRESS": StackState.IN_PROGRESS, "CREATE_FAILED": StackState.SETTLED_FAILED,
    "CREATE_COMPLETE": StackState.SETTLED_OK, "ROLLBACK_IN_PROGRESS": StackState.IN_PROGRESS,
    "ROLLBACK_FAILED": StackState.SETTLED_FAILED, "ROLLBACK_COMPLETE": StackState.ROLLBACK_COMPLETE,
    "DELETE_IN_PROGRESS": StackState.IN_PROGRESS, "DELETE_FAILED": StackState.SETTLED_FAILED,
    "DELETE_COMPLETE": StackState.ABSENT, "UPDATE_IN_PROGRESS": StackState.IN_PROGRESS,
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS": StackState.IN_PROGRESS, "UPDATE_COMPLETE": StackState.SETTLED_OK,
    "UPDATE_FAILED": StackState.SETTLED_FAILED, "UPDATE_ROLLBACK_IN_PROGRESS": StackState.IN_PROGRESS,
    "UPDATE_ROLLBACK_FAILED": StackState.SETTLED_FAILED,
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS": StackState.IN_PROGRESS,
    "UPDATE_ROLLBACK_COMPLETE": StackState.SETTLED_FAILED, "REVIEW_IN_PROGRESS": StackState.REVIEW_IN_PROGRESS,
    "IMPORT_IN_PROGRESS": StackState.IN_PROGRESS, "IMPORT_COMPLETE": StackState.SETTLED_OK,
    "IMPORT_ROLLBACK_IN_PROGRESS": StackState.IN_PROGRESS, "IMPORT_ROLLBACK_FAILED": StackState.SETTLED_FAILED,
    "IMPORT_ROLLBACK_COMPLETE": StackState.SETTLED_FAILED,
}


def test_botocore_knows_no_status_we_do_not() -> None:
    import botocore.session

    model = botocore.session.get_session().get_service_model("cloudformation")
    assert set(model.shape_for("StackStatus").enum) == set(STATUSES)


@pytest.mark.parametrize(("status", "state"), [*STATUSES.items(), (None, StackState.ABSENT)])
def test_every_status_has_a_state(status: str | None, state: StackState) -> None:
    assert StackState.of(status) is state


def test_what_each_state_allows() -> None:
    assert [s for s in StackState if s.exists] == [StackState.IN_PROGRESS, StackState.ROLLBACK_COMPLETE,
                                                  StackState.SETTLED_OK, StackState.SETTLED_FAILED]
    assert [s for s in StackState if s.busy] == [StackState.IN_PROGRESS]
    assert [s for s in StackState if s.succeeded] == [StackState.SETTLED_OK]
    assert [s for s in StackState if s.failed] == [StackState.ROLLBACK_COMPLETE, StackState.SETTLED_FAILED]


def test_an_unknown_status_is_not_guessed() -> None:
    with pytest.raises(DeployError, match="unknown stack status UPDATE_SOMETHING"):
        StackState.of("UPDATE_SOMETHING")


def client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "DescribeStacks")


@pytest.mark.parametrize(("code", "message", "missing"), [
    ("ValidationError", "Stack with id scrybe-kms-dev does not exist", True),
    ("ValidationError", "Stack with id arn:aws:cloudformation:us-west-2:1:stack/x/1 does not exist", True),
    ("ValidationError", "1 validation error detected: Value 'x!' at 'stackName' failed to satisfy constraint", False),
    ("ValidationError", "Stack [scrybe-kms-dev] does not exist; ChangeSet [x] does not exist", False),
    ("AccessDenied", "Stack with id scrybe-kms-dev does not exist", False),
])
def test_missing_stack_is_the_validation_error_with_that_message(code: str, message: str, missing: bool) -> None:
    assert is_missing_stack(client_error(code, message)) is missing


NO_CHANGES = "The submitted information didn't contain changes. Submit different information to create a change set."


@pytest.mark.parametrize(("status", "execution", "reason", "no_changes"), [
    ("FAILED", "UNAVAILABLE", NO_CHANGES, True),
    ("FAILED", "UNAVAILABLE", "No updates are to be performed.", True),  # the documented fallback
    ("FAILED", "UNAVAILABLE", "Template format error: unsupported structure.", False),
    ("FAILED", "AVAILABLE", NO_CHANGES, False),
    ("CREATE_COMPLETE", "AVAILABLE", "", False),
])
def test_no_changes_is_a_failed_unexecutable_change_set_with_that_reason(
        status: str, execution: str, reason: str, no_changes: bool) -> None:
    change_set = ChangeSet("cs", "UPDATE", status, execution, reason)
    assert change_set.no_changes is no_changes
    assert change_set.failed is (status == "FAILED")


def test_open_session_checks_the_region_before_any_call(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with pytest.raises(DeployError, match="the AWS session's region is us-east-1, but the production configuration "
                                          "deploys to us-west-2; pass --region us-west-2"):
        open_session(DeployOptions("production"), config())
    monkeypatch.delenv("AWS_REGION")
    with pytest.raises(DeployError, match="no AWS region configured: pass --region us-west-2"):
        open_session(DeployOptions("production"), config())
