"""Following a running stack: print every stack event once, in order, until the stack settles.

One DescribeStackEvents call per poll; DescribeStacks only to confirm a settled status (and, as a
safety net, every tenth poll). With the default 1 s poll the command returns about a second after
the stack finishes; the AWS CLI's waiter checks every 30 s.

Each execution is given a ``ClientRequestToken`` (the change set's name), which CloudFormation
copies onto every event of that operation (decision D41): ``follow`` prints only its own
operation's events and ends with its own operation's result, and says so when another deploy
started on the same stack meanwhile. A poll that fails transiently is tried again (``patiently``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import botocore.exceptions as boto_errors

from scrybe_kms.deploy.errors import DeployError, aws_errors, error_code, error_message
from scrybe_kms.deploy.options import Say
from scrybe_kms.deploy.patience import patiently
from scrybe_kms.deploy.stack import Stack, StackState, read_stack

__all__ = ["Overtaken", "events_since", "execute_and_follow", "follow", "format_event", "newest_event_id"]

#: Confirm with DescribeStacks at least this often, even without a settled stack event.
SAFETY_POLLS = 10


class Overtaken(DeployError):
    """The change set can no longer run: the stack changed after it was made."""


def newest_event_id(cf: Any, stack: str, pause: float = 0.0) -> str | None:
    """The newest event already there; ``follow`` reports only what comes after it."""
    with aws_errors(f"read events of {stack}"):
        events = patiently(lambda: cf.describe_stack_events(StackName=stack)["StackEvents"],
                           f"read the events of {stack}", pause)
    return str(events[0]["EventId"]) if events else None


def events_since(cf: Any, stack: str, newest_seen: str | None, pause: float = 0.0) -> list[dict[str, Any]]:
    """Events after ``newest_seen``, oldest first. DescribeStackEvents pages newest first, 100 to a
    page, and a fast stack can emit more than a page between two polls: read on until the last
    event already reported (usually one call)."""

    def read() -> list[dict[str, Any]]:
        fresh: list[dict[str, Any]] = []
        for page in cf.get_paginator("describe_stack_events").paginate(StackName=stack):
            for event in page["StackEvents"]:
                if event["EventId"] == newest_seen:
                    return fresh[::-1]
                fresh.append(event)
        return fresh[::-1]

    with aws_errors(f"read events of {stack}"):
        return patiently(read, f"read the events of {stack}", pause)


def format_event(event: dict[str, Any]) -> str:
    reason = event.get("ResourceStatusReason") or ""
    return (f"  {event['Timestamp']:%H:%M:%S} {event['ResourceStatus']:<22} "
            f"{event['LogicalResourceId']} ({event.get('ResourceType', '')}) {reason}").rstrip()


def _is_stack_event(event: dict[str, Any], stack: str) -> bool:
    return event.get("ResourceType") == "AWS::CloudFormation::Stack" and event["LogicalResourceId"] == stack


def _settles(event: dict[str, Any], stack: str) -> bool:
    """The stack's own event for a status that is not in progress: time to confirm and stop."""
    return _is_stack_event(event, stack) and not event["ResourceStatus"].endswith("_IN_PROGRESS")


def _foreign(event: dict[str, Any], token: str | None) -> bool:
    """An event of another operation. Without a token on the event (an endpoint that does not
    copy it), every event counts as this operation's, as before tokens were used."""
    theirs = event.get("ClientRequestToken")
    return bool(token and theirs and theirs != token)


def follow(cf: Any, stack: str, since: str | None, say: Say, poll_seconds: float, token: str | None = None) -> Stack:
    """Print events after ``since`` (of the operation ``token``, if given) until the stack settles;
    return it if it succeeded, else raise a ``DeployError`` naming the failed events."""
    failures: list[str] = []
    polls, outcome, overtaken = 0, "", False
    while True:
        time.sleep(poll_seconds)
        polls += 1
        settled = False
        for event in events_since(cf, stack, since, poll_seconds):
            since = event["EventId"]
            if _foreign(event, token):
                if _is_stack_event(event, stack) and not overtaken:
                    overtaken = True
                    say(f"  another operation ({event.get('ClientRequestToken')}) started on {stack}; "
                        "its events are not this deploy's and are not shown")
                continue
            line = format_event(event)
            say(line)
            if event["ResourceStatus"].endswith("FAILED"):
                failures.append(line.strip())
            if _settles(event, stack):
                settled, outcome = True, event["ResourceStatus"]
        if not (settled or polls % SAFETY_POLLS == 0):
            continue
        current = read_stack(cf, stack, poll_seconds)
        if overtaken and outcome:
            # The stack's status now belongs to the other operation; this one ended with ``outcome``.
            current = dataclasses.replace(current, status=outcome)
        if current.state.succeeded:
            return current
        if current.state.failed or current.state is StackState.ABSENT:
            detail = "\n".join(f"  {f}" for f in failures) or "  (no failed resource events reported)"
            raise DeployError(f"deploy failed: {stack} is {current.status or 'gone'}. CloudFormation rolled back "
                              f"as it does; nothing was deleted by scrybe-kms.\nfailing events:\n{detail}")


def execute(cf: Any, stack: str, change_set: str, token: str | None = None) -> None:
    """Execute ``change_set``; ``Overtaken`` if the stack moved on since it was made."""
    params: dict[str, str] = {"StackName": stack, "ChangeSetName": change_set}
    if token:
        params["ClientRequestToken"] = token
    with aws_errors(f"execute change set {change_set}"):
        try:
            cf.execute_change_set(**params)
        except boto_errors.ClientError as exc:
            if error_code(exc) in ("InvalidChangeSetStatus", "InvalidChangeSetStatusException"):
                raise Overtaken(f"change set {change_set} can no longer be executed ({error_message(exc)}): "
                                f"another deploy or update changed {stack} after it was made, so it is "
                                "obsolete. Nothing was executed; run the deploy again.") from None
            raise


def execute_and_follow(cf: Any, stack: str, change_set: str, say: Say, poll_seconds: float,
                       token: str | None = None, on_executed: Callable[[], None] | None = None) -> Stack:
    """Execute ``change_set`` and follow the stack until it settles."""
    since = newest_event_id(cf, stack, poll_seconds)
    execute(cf, stack, change_set, token)
    if on_executed is not None:
        on_executed()
    return follow(cf, stack, since, say, poll_seconds, token)
