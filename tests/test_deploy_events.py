"""How ``scrybe-kms deploy`` follows a running stack, against botocore's Stubber (no network).

It must print every event once and in order, even when more than a page (100) arrives between two
polls; stop as soon as the stack's own event says it settled (confirmed by DescribeStacks); keep
polling through a rollback; and report failures with CloudFormation's reasons.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from scrybe_kms.deploy import DeployError
from scrybe_kms.deploy.events import execute_and_follow

STACK = "scrybe-kms-production"
STACK_ID = f"arn:aws:cloudformation:us-west-2:123456789012:stack/{STACK}/1"
START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def event(number: int, logical: str, status: str, kind: str = "AWS::SNS::Topic", reason: str = "") -> dict[str, Any]:
    found = {"StackId": STACK_ID, "StackName": STACK, "EventId": f"e{number}", "LogicalResourceId": logical,
             "ResourceType": kind, "ResourceStatus": status, "Timestamp": START + timedelta(seconds=number)}
    return {**found, "ResourceStatusReason": reason} if reason else found


def stack_event(number: int, status: str) -> dict[str, Any]:
    return event(number, STACK, status, "AWS::CloudFormation::Stack")


def described(status: str) -> dict[str, Any]:
    return {"Stacks": [{"StackName": STACK, "StackId": STACK_ID, "CreationTime": START, "StackStatus": status,
                        "Outputs": [{"OutputKey": "KmsKeyId", "OutputValue": "k-1"}]}]}


class Run:
    """A stubbed CloudFormation client and what ``execute_and_follow`` printed."""

    def __init__(self) -> None:
        self.cf = boto3.client("cloudformation", region_name="us-west-2", aws_access_key_id="x",
                               aws_secret_access_key="x")
        self.printed: list[str] = []

    def execute(self, change_set: str) -> Any:
        return execute_and_follow(self.cf, STACK, change_set, self.printed.append, poll_seconds=0)


@pytest.fixture
def deployment() -> tuple[Run, Stubber, list[str]]:
    run = Run()
    return run, Stubber(run.cf), run.printed


def expect_start(stubber: Stubber) -> None:
    """Before executing: the newest existing event (e0), from which new ones are counted."""
    stubber.add_response("describe_stack_events", {"StackEvents": [stack_event(0, "UPDATE_COMPLETE")]},
                         {"StackName": STACK})
    stubber.add_response("execute_change_set", {}, {"StackName": STACK, "ChangeSetName": "cs"})


def test_every_event_is_printed_once_in_order_across_pages(deployment: Any) -> None:
    run, stubber, out = deployment
    expect_start(stubber)
    # 120 new events arrive before the first poll: two pages, newest first, ending at e0.
    new = [stack_event(1, "UPDATE_IN_PROGRESS")] + [event(n, f"Topic{n}", "UPDATE_COMPLETE") for n in range(2, 120)]
    new.append(stack_event(120, "UPDATE_COMPLETE"))
    newest_first = new[::-1]
    stubber.add_response("describe_stack_events", {"StackEvents": newest_first[:100], "NextToken": "p2"},
                         {"StackName": STACK})
    stubber.add_response("describe_stack_events", {"StackEvents": [*newest_first[100:], event(0, STACK, "X")]},
                         {"StackName": STACK, "NextToken": "p2"})
    stubber.add_response("describe_stacks", described("UPDATE_COMPLETE"), {"StackName": STACK})
    with stubber:
        stack = run.execute("cs")
    stubber.assert_no_pending_responses()
    assert stack.status == "UPDATE_COMPLETE"
    printed = [line.split()[2] for line in out]
    assert printed == [STACK] + [f"Topic{n}" for n in range(2, 120)] + [STACK]


def test_polling_goes_on_through_a_rollback_and_reports_the_reason(deployment: Any) -> None:
    run, stubber, out = deployment
    expect_start(stubber)
    failed = event(2, "AuditLogBucket", "UPDATE_FAILED", "AWS::S3::Bucket", "Bucket name not valid")
    # The stack's own event settles (UPDATE_ROLLBACK_IN_PROGRESS is not settled; a failure is
    # confirmed with DescribeStacks, which still says the rollback is running).
    first = [stack_event(3, "UPDATE_FAILED"), failed, stack_event(1, "UPDATE_IN_PROGRESS")]
    stubber.add_response("describe_stack_events", {"StackEvents": [*first, event(0, STACK, "X")]},
                         {"StackName": STACK})
    stubber.add_response("describe_stacks", described("UPDATE_ROLLBACK_IN_PROGRESS"), {"StackName": STACK})
    stubber.add_response("describe_stack_events",
                         {"StackEvents": [stack_event(4, "UPDATE_ROLLBACK_COMPLETE"), *first]},
                         {"StackName": STACK})
    stubber.add_response("describe_stacks", described("UPDATE_ROLLBACK_COMPLETE"), {"StackName": STACK})
    with stubber, pytest.raises(DeployError) as raised:
        run.execute("cs")
    stubber.assert_no_pending_responses()
    message = str(raised.value)
    assert message.startswith(f"deploy failed: {STACK} is UPDATE_ROLLBACK_COMPLETE")
    assert "UPDATE_FAILED          AuditLogBucket (AWS::S3::Bucket) Bucket name not valid" in message
    assert sum("AuditLogBucket" in line for line in out) == 1


def test_resource_events_alone_never_end_the_wait(deployment: Any) -> None:
    """Only the stack's own settled event (or the tenth poll's safety check) reads DescribeStacks."""
    run, stubber, out = deployment
    expect_start(stubber)
    for poll in range(1, 10):
        stubber.add_response("describe_stack_events",
                             {"StackEvents": [event(poll, f"Topic{poll}", "UPDATE_COMPLETE"),
                                              event(poll - 1, "X", "Y")]}, {"StackName": STACK})
    stubber.add_response("describe_stack_events", {"StackEvents": [event(9, "X", "Y")]}, {"StackName": STACK})
    stubber.add_response("describe_stacks", described("UPDATE_COMPLETE"), {"StackName": STACK})
    with stubber:
        assert run.execute("cs").status == "UPDATE_COMPLETE"
    stubber.assert_no_pending_responses()
    assert len(out) == 9
