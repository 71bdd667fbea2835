"""Following a running stack: print every stack event once, in order, until the stack settles.

One DescribeStackEvents call per poll; DescribeStacks only to confirm a settled status (and, as a
safety net, every tenth poll). With the default 1 s poll the command returns about a second after
the stack finishes; the AWS CLI's waiter checks every 30 s.
"""

from __future__ import annotations

import time
from typing import Any

from scrybe_kms.deploy.errors import DeployError, aws_errors
from scrybe_kms.deploy.options import Say
from scrybe_kms.deploy.stack import Stack, StackState, read_stack

__all__ = ["events_since", "execute_and_follow", "follow", "format_event", "newest_event_id"]

#: Confirm with DescribeStacks at least this often, even without a settled stack event.
SAFETY_POLLS = 10


def newest_event_id(cf: Any, stack: str) -> str | None:
    """The newest event already there; ``follow`` reports only what comes after it."""
    with aws_errors(f"read events of {stack}"):
        events = cf.describe_stack_events(StackName=stack)["StackEvents"]
    return str(events[0]["EventId"]) if events else None


def events_since(cf: Any, stack: str, newest_seen: str | None) -> list[dict[str, Any]]:
    """Events after ``newest_seen``, oldest first. DescribeStackEvents pages newest first, 100 to a
    page, and a fast stack can emit more than a page between two polls: read on until the last
    event already reported (usually one call)."""
    fresh: list[dict[str, Any]] = []
    with aws_errors(f"read events of {stack}"):
        for page in cf.get_paginator("describe_stack_events").paginate(StackName=stack):
            for event in page["StackEvents"]:
                if event["EventId"] == newest_seen:
                    return fresh[::-1]
                fresh.append(event)
    return fresh[::-1]


def format_event(event: dict[str, Any]) -> str:
    reason = event.get("ResourceStatusReason") or ""
    return (f"  {event['Timestamp']:%H:%M:%S} {event['ResourceStatus']:<22} "
            f"{event['LogicalResourceId']} ({event.get('ResourceType', '')}) {reason}").rstrip()


def _settles(event: dict[str, Any], stack: str) -> bool:
    """The stack's own event for a status that is not in progress: time to confirm and stop."""
    return (event.get("ResourceType") == "AWS::CloudFormation::Stack" and event["LogicalResourceId"] == stack
            and not event["ResourceStatus"].endswith("_IN_PROGRESS"))


def follow(cf: Any, stack: str, since: str | None, say: Say, poll_seconds: float) -> Stack:
    """Print events after ``since`` until the stack settles; return it if it succeeded, else
    raise a ``DeployError`` naming the failed events."""
    failures: list[str] = []
    polls = 0
    while True:
        time.sleep(poll_seconds)
        polls += 1
        settled = False
        for event in events_since(cf, stack, since):
            since = event["EventId"]
            line = format_event(event)
            say(line)
            if event["ResourceStatus"].endswith("FAILED"):
                failures.append(line.strip())
            settled = settled or _settles(event, stack)
        if not (settled or polls % SAFETY_POLLS == 0):
            continue
        current = read_stack(cf, stack)
        if current.state.succeeded:
            return current
        if current.state.failed or current.state is StackState.ABSENT:
            detail = "\n".join(f"  {f}" for f in failures) or "  (no failed resource events reported)"
            raise DeployError(f"deploy failed: {stack} is {current.status or 'gone'}. CloudFormation rolled back "
                              f"as it does; nothing was deleted by scrybe-kms.\nfailing events:\n{detail}")


def execute_and_follow(cf: Any, stack: str, change_set: str, say: Say, poll_seconds: float) -> Stack:
    """Execute ``change_set`` and follow the stack until it settles."""
    since = newest_event_id(cf, stack)
    with aws_errors(f"execute change set {change_set}"):
        cf.execute_change_set(StackName=stack, ChangeSetName=change_set)
    return follow(cf, stack, since, say, poll_seconds)
