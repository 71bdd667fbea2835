"""A stack as DescribeStacks reports it, and what its status means for a deploy.

``StackState`` sorts CloudFormation's two dozen status strings into the six situations the deploy
command acts on, so nothing else compares raw status strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import botocore.exceptions as boto_errors

from scrybe_kms.deploy.errors import DeployError, aws_errors, error_code, error_message
from scrybe_kms.deploy.patience import patiently

__all__ = ["Stack", "StackState", "deployed_template", "is_missing_stack", "read_stack"]

_SUCCEEDED = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})
_FAILED = frozenset({"CREATE_FAILED", "ROLLBACK_FAILED", "UPDATE_FAILED", "UPDATE_ROLLBACK_COMPLETE",
                     "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED", "IMPORT_ROLLBACK_COMPLETE", "IMPORT_ROLLBACK_FAILED"})


class StackState(Enum):
    ABSENT = "absent"
    #: CloudFormation made an empty stack for a CREATE change set that never ran; no resources.
    REVIEW_IN_PROGRESS = "review in progress"
    IN_PROGRESS = "in progress"
    #: The first create failed and rolled back: the stack can only be deleted, not updated.
    ROLLBACK_COMPLETE = "rollback complete"
    SETTLED_OK = "settled ok"
    SETTLED_FAILED = "settled failed"

    @classmethod
    def of(cls, status: str | None) -> StackState:
        if status is None or status == "DELETE_COMPLETE":
            return cls.ABSENT
        if status == "REVIEW_IN_PROGRESS":
            return cls.REVIEW_IN_PROGRESS
        if status.endswith("_IN_PROGRESS"):
            return cls.IN_PROGRESS
        if status == "ROLLBACK_COMPLETE":
            return cls.ROLLBACK_COMPLETE
        if status in _SUCCEEDED:
            return cls.SETTLED_OK
        if status in _FAILED:
            return cls.SETTLED_FAILED
        raise DeployError(f"unknown stack status {status}; refusing to guess what it means")

    @property
    def exists(self) -> bool:
        """There is a deployed template (and resources) that a deploy would update."""
        return self not in (StackState.ABSENT, StackState.REVIEW_IN_PROGRESS)

    @property
    def busy(self) -> bool:
        return self is StackState.IN_PROGRESS

    @property
    def succeeded(self) -> bool:
        return self is StackState.SETTLED_OK

    @property
    def failed(self) -> bool:
        """Settled, and not the way the deploy wanted (a rolled-back create counts)."""
        return self in (StackState.SETTLED_FAILED, StackState.ROLLBACK_COMPLETE)


@dataclass(frozen=True)
class Stack:
    name: str
    status: str | None = None
    description: Mapping[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> StackState:
        return StackState.of(self.status)

    @property
    def outputs(self) -> dict[str, str]:
        return {o["OutputKey"]: o["OutputValue"] for o in self.description.get("Outputs", [])}

    @property
    def termination_protection(self) -> bool:
        return bool(self.description.get("EnableTerminationProtection"))


#: CloudFormation has no "stack not found" code: DescribeStacks answers ValidationError, the code
#: of every malformed request, with this message (boto/boto3#2807; LocalStack and moto copy it).
#: So the code alone is ambiguous, and only this exact message means "absent".
_MISSING = re.compile(r"Stack with id \S+ does not exist")


def is_missing_stack(exc: boto_errors.ClientError) -> bool:
    return error_code(exc) == "ValidationError" and _MISSING.fullmatch(error_message(exc).strip()) is not None


def read_stack(cf: Any, name: str, pause: float | None = None) -> Stack:
    """The stack's description; ``Stack(name)`` (state ABSENT) when there is none. With ``pause``
    (while following a stack that is changing), transient failures are tried again."""
    with aws_errors(f"describe stack {name}"):
        try:
            if pause is None:
                found = cf.describe_stacks(StackName=name)["Stacks"]
            else:
                found = patiently(lambda: cf.describe_stacks(StackName=name)["Stacks"], f"describe stack {name}",
                                  pause)
        except boto_errors.ClientError as exc:
            if is_missing_stack(exc):
                return Stack(name)
            raise
    if not found:
        return Stack(name)
    return Stack(name, str(found[0]["StackStatus"]), dict(found[0]))


def deployed_template(cf: Any, name: str) -> dict[str, Any]:
    with aws_errors(f"read the template of {name}"):
        body = cf.get_template(StackName=name, TemplateStage="Original")["TemplateBody"]
    if isinstance(body, dict):
        return dict(body)
    try:
        return dict(json.loads(body))
    except ValueError as exc:  # not JSON: the local replacement check cannot read it, so stop here
        raise DeployError(f"the deployed template of {name} is not JSON ({exc}); cannot compare it") from None
