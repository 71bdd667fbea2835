"""Change sets: create one and read all its pages, recognise "no changes", discard.

Executing one is ``events.execute_and_follow``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scrybe_kms.deploy.errors import DeployError, aws_errors
from scrybe_kms.deploy.patience import patiently
from scrybe_kms.deploy.stack import StackState, read_stack

__all__ = ["CAPABILITIES", "ChangeSet", "create", "discard", "new_name"]

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]

#: How CloudFormation reports a change set that would change nothing: ``Status: FAILED``,
#: ``ExecutionStatus: UNAVAILABLE`` and this ``StatusReason`` (the text the AWS CLI's
#: ``cloudformation deploy`` and the CDK test for too; LocalStack and moto copy it).
NO_CHANGES_REASON = "The submitted information didn't contain changes."
#: Fallback only: CloudFormation sometimes gives a no-op change set UpdateStack's wording as the
#: reason instead (documented by ansible-collections/amazon.aws#507 and handled by the CDK). Still
#: only for a FAILED, unexecutable change set; anything else that failed is an error.
NO_CHANGES_FALLBACK = ("No updates are to be performed",)
_PENDING = ("CREATE_PENDING", "CREATE_IN_PROGRESS")
#: Change set types that make a new (REVIEW_IN_PROGRESS) stack until they are executed.
NEW_STACK = ("CREATE", "IMPORT")


@dataclass(frozen=True)
class ChangeSet:
    name: str
    change_type: str  # CREATE, UPDATE or IMPORT
    status: str
    execution_status: str = ""
    reason: str = ""
    changes: tuple[Mapping[str, Any], ...] = ()

    @property
    def failed(self) -> bool:
        return self.status == "FAILED"

    @property
    def no_changes(self) -> bool:
        if not (self.failed and self.execution_status == "UNAVAILABLE"):
            return False
        return self.reason.startswith(NO_CHANGES_REASON) or any(m in self.reason for m in NO_CHANGES_FALLBACK)


def new_name() -> str:
    return f"scrybe-kms-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def create(cf: Any, stack: str, body: str, change_type: str, description: str, poll_seconds: float,
           name: str | None = None, resources_to_import: list[dict[str, Any]] | None = None,
           parameters: Mapping[str, str] | None = None) -> ChangeSet:
    """Create a change set and wait until CloudFormation has worked it out (or failed to).

    ``ClientToken`` (the name) makes botocore's retries of CreateChangeSet safe; the polls that
    follow are tried again on transient failures."""
    name = name or new_name()
    extra: dict[str, Any] = {"ResourcesToImport": resources_to_import} if resources_to_import else {}
    if parameters:  # every value given: a parameter left out would fall back to its default
        extra["Parameters"] = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())]
    with aws_errors(f"create a change set for {stack}"):
        cf.create_change_set(StackName=stack, ChangeSetName=name, ChangeSetType=change_type, TemplateBody=body,
                             Capabilities=CAPABILITIES, Description=description, ClientToken=name, **extra)

        def describe(**more: str) -> dict[str, Any]:
            return dict(patiently(lambda: cf.describe_change_set(StackName=stack, ChangeSetName=name, **more),
                                  f"describe change set {name}", poll_seconds))

        while (described := describe())["Status"] in _PENDING:
            time.sleep(poll_seconds)
        changes = list(described.get("Changes", []))
        token = described.get("NextToken")
        while token:
            page = describe(NextToken=token)
            changes += page.get("Changes", [])
            token = page.get("NextToken")
    found = ChangeSet(name, change_type, str(described["Status"]), str(described.get("ExecutionStatus", "")),
                      str(described.get("StatusReason", "") or ""), tuple(changes))
    if not (found.failed or found.status == "CREATE_COMPLETE"):
        discard(cf, stack, found)
        raise DeployError(f"change set {name} ended up {found.status}, not CREATE_COMPLETE; it was deleted")
    return found


def discard(cf: Any, stack: str, change_set: ChangeSet) -> None:
    """Delete an unexecuted change set; for a new stack, also the empty REVIEW_IN_PROGRESS stack
    CloudFormation made for it (it holds no resources)."""
    with aws_errors(f"delete change set {change_set.name}"):
        cf.delete_change_set(StackName=stack, ChangeSetName=change_set.name)
    if change_set.change_type in NEW_STACK and read_stack(cf, stack).state is StackState.REVIEW_IN_PROGRESS:
        with aws_errors(f"delete the empty stack {stack}"):
            cf.delete_stack(StackName=stack)
