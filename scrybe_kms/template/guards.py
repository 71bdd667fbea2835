"""Input checks for the public builders, with the configuration's messages.

A builder called from another stack gets the same protection as a stack file: every problem in
one :class:`~scrybe_kms.config.ConfigError`, each as ``'field' must be ... (got value)``. Intrinsic
functions (``Ref``, ``ImportValue``, ``Sub`` ...) are passed through, as troposphere's validators
do: their value is known only to CloudFormation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from troposphere import AWSHelperFn

from scrybe_kms.config import ConfigError
from scrybe_kms.config import validators as v

__all__ = ["Check", "checked", "title"]

#: ``(validator, field name, value)``; the validator is one of :mod:`scrybe_kms.config.validators`.
Check = tuple[Callable[[str, Any], Any], str, Any]


def checked(owner: str, *checks: Check) -> list[Any]:
    """Run every check, then raise one ``ConfigError`` naming ``owner`` with all the problems,
    or return the checked values in order."""
    problems: list[str] = []
    values: list[Any] = []
    for validator, field, value in checks:
        if isinstance(value, AWSHelperFn):
            values.append(value)
            continue
        try:
            values.append(validator(field, value))
        except ValueError as exc:
            problems.append(str(exc))
            values.append(None)
    if problems:
        raise ConfigError(problems, source=owner)
    return values


def title(field: str, value: Any) -> str:
    """A CloudFormation logical ID: 1-255 ASCII letters and digits."""
    if not isinstance(value, str) or not value.isascii() or not value.isalnum() or len(value) > 255:
        raise ValueError(f"'{field}' must be a logical ID of ASCII letters and digits (got {value!r})")
    return value


def optional(validator: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    """``validator``, but ``None`` passes: for optional builder arguments."""
    def check(field: str, value: Any) -> Any:
        return None if value is None else validator(field, value)
    return check


def _role(field: str, value: Any) -> Any:
    return value if isinstance(value, AWSHelperFn) else v.role_arn(field, value)


def _roles(field: str, value: Any) -> tuple[Any, ...]:
    """:func:`validators.role_arns`, letting intrinsic functions stand for an element."""
    if isinstance(value, (list, tuple)) and value and not isinstance(value, str):
        checked = tuple(_role(f"{field}[{i}]", arn) for i, arn in enumerate(value))
        v.unique(field, [a for a in checked if isinstance(a, str)])
        return checked
    return v.role_arns(field, value)


ROLE = _role
ROLES = _roles
ENVIRONMENT = v.environment
ALIAS = v.alias_name
DELETION_WINDOW = v.deletion_window
