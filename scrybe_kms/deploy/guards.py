"""The two guards every deploy leaves on the stack: the stack policy (no update may replace or
delete a protected resource) and, for staging and production, termination protection."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import botocore.exceptions as boto_errors

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.deploy.errors import aws_errors, error_code
from scrybe_kms.deploy.options import Say
from scrybe_kms.deploy.session import AwsSession
from scrybe_kms.deploy.stack import Stack
from scrybe_kms.derived.stack_policy import stack_policy

__all__ = ["NOT_IMPLEMENTED", "apply_guards", "protect_from_termination", "set_stack_policy"]

#: Error codes an emulator answers for an API it lacks (LocalStack: InternalFailure, HTTP 501).
NOT_IMPLEMENTED = frozenset({"InternalFailure", "NotImplemented", "NotImplementedException"})


def set_stack_policy(aws: AwsSession, stack: str, template: Mapping[str, Any], say: Say) -> None:
    with aws_errors(f"set the stack policy of {stack}"):
        try:
            aws.cloudformation.set_stack_policy(StackName=stack, StackPolicyBody=json.dumps(stack_policy(template)))
        except boto_errors.ClientError as exc:
            # Only an emulator lacks SetStackPolicy; against AWS a missing stack policy is an error.
            if not (aws.endpoint and error_code(exc) in NOT_IMPLEMENTED):
                raise
            say(f"WARNING: the endpoint {aws.endpoint} does not implement SetStackPolicy; "
                "the stack policy was NOT applied")


def protect_from_termination(aws: AwsSession, cfg: EnvironmentConfig, stack: Stack) -> None:
    """Termination protection for staging and production, unless ``stack`` (a fresh description)
    shows it is already on."""
    if cfg.termination_protection and not stack.termination_protection:
        with aws_errors(f"enable termination protection on {stack.name}"):
            aws.cloudformation.update_termination_protection(StackName=stack.name, EnableTerminationProtection=True)


def apply_guards(aws: AwsSession, cfg: EnvironmentConfig, template: Mapping[str, Any], stack: Stack,
                 say: Say) -> None:
    set_stack_policy(aws, stack.name, template, say)
    protect_from_termination(aws, cfg, stack)
