"""Single-rule validators in the troposphere style.

Each function takes the field name and the value, and returns the (normalised) value or raises
``ValueError`` with a message of the form ``'field' must be ... (got value)``. They know nothing
about each other; :mod:`scrybe_kms.config` runs them all and collects every failure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "CLOUDWATCH_LOGS_RETENTION_DAYS",
    "ENVIRONMENTS",
    "MIN_AUDIT_RETENTION_DAYS",
    "alias_name",
    "arn_account",
    "arn_partition",
    "deletion_window",
    "email_address",
    "environment",
    "partition_of",
    "region",
    "retention_days",
    "role_arn",
    "role_arns",
    "sns_topic_arn",
    "unique",
]

ENVIRONMENTS = ("dev", "staging", "production")

#: The only values CloudWatch Logs accepts for RetentionInDays.
CLOUDWATCH_LOGS_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)
#: HIPAA requires six years for compliance documentation; audit logs may not be kept for less.
MIN_AUDIT_RETENTION_DAYS = 2192

#: Partitions we deploy to. The isolated (ISO) partitions are deliberately not offered.
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")

_PARTITION = r"(?P<partition>aws|aws-cn|aws-us-gov)"
_ACCOUNT = r"(?P<account>[0-9]{12})"
_ROLE_ARN = re.compile(
    rf"arn:{_PARTITION}:iam::{_ACCOUNT}:role/(?P<path>(?:[A-Za-z0-9+=,.@_-]+/)*)"
    r"(?P<name>[A-Za-z0-9+=,.@_-]{1,64})",
    re.ASCII,
)
_TOPIC_ARN = re.compile(
    rf"arn:{_PARTITION}:sns:(?P<region>[a-z0-9-]+):{_ACCOUNT}:(?P<name>[A-Za-z0-9_-]{{1,256}})",
    re.ASCII,
)
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
                    re.ASCII)
_ALIAS = re.compile(r"alias/[A-Za-z0-9/_-]{1,250}", re.ASCII)

# What people paste by mistake, recognised so the message can say what it is.
_NOT_A_ROLE = (
    (re.compile(r"arn:[^:]*:iam::[^:]*:user/"), "an IAM user ARN, not a role ARN"),
    (re.compile(r"arn:[^:]*:iam::[^:]*:group/"), "an IAM group ARN, not a role ARN"),
    (re.compile(r"arn:[^:]*:iam::[^:]*:root$"), "an account root ARN, not a role ARN"),
    (re.compile(r"arn:[^:]*:sts::[^:]*:assumed-role/"),
     "an STS assumed-role session ARN; use the role's IAM ARN"),
)


def arn_partition(arn: str) -> str:
    return arn.split(":")[1]


def arn_account(arn: str) -> str:
    return arn.split(":")[4]


def _got(value: Any) -> str:
    return f"(got {value!r})"


def _require_str(field: str, value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"'{field}' must be {what} {_got(value)}")
    if value != value.strip() or not value:
        raise ValueError(f"'{field}' must be {what} without surrounding whitespace {_got(value)}")
    return value


def environment(field: str, value: Any) -> str:
    """The environment name picks names, exports and alarms: only the three we run."""
    checked = _require_str(field, value, "one of " + ", ".join(ENVIRONMENTS))
    if value not in ENVIRONMENTS:
        raise ValueError(f"'{field}' must be one of {', '.join(ENVIRONMENTS)} {_got(value)}")
    return checked


@cache
def _regions() -> dict[str, str]:
    """Region -> partition: every region of the offered partitions where both KMS and CloudTrail
    run, from ``regions.json``, a snapshot of botocore's endpoint data (decision D22).

    A packaged table keeps botocore (32 MB) out of a consumer's install and makes what a build
    accepts independent of the installed botocore. ``tests/test_config.py`` checks it equals the
    pinned botocore's resolver; ``tools/update_regions.py`` regenerates it."""
    table: dict[str, str] = json.loads((resources.files("scrybe_kms.config") / "regions.json").read_bytes())
    return {name: partition for name, partition in table.items() if partition in PARTITIONS}


def region(field: str, value: Any) -> str:
    """A region both KMS and CloudTrail serve, so the template can deploy there."""
    checked = _require_str(field, value, "an AWS region such as 'us-west-2'")
    if value not in _regions():
        raise ValueError(f"'{field}' must be an AWS region where KMS and CloudTrail run, "
                         f"such as 'us-west-2' {_got(value)}")
    return checked


def partition_of(region_name: str) -> str:
    """The ARN partition of a region validated by :func:`region`."""
    return _regions()[region_name]


def role_arn(field: str, value: Any) -> str:
    """An IAM role ARN; users, groups, sessions and root are refused with what they are."""
    what = "an IAM role ARN (arn:<partition>:iam::<12-digit account>:role/<name>)"
    checked = _require_str(field, value, what)
    if _ROLE_ARN.fullmatch(value) is None:
        for pattern, kind in _NOT_A_ROLE:
            if pattern.match(value):
                raise ValueError(f"'{field}' must be {what}; this is {kind} {_got(value)}")
        raise ValueError(f"'{field}' must be {what} {_got(value)}")
    if "/aws-service-role/" in value:
        raise ValueError(f"'{field}' must be {what}; this is a service-linked role {_got(value)}")
    return checked


def sns_topic_arn(field: str, value: Any, region_name: str | None) -> str:
    """An SNS topic in the stack's region: CloudWatch alarms cannot notify another region."""
    what = "an SNS topic ARN (arn:<partition>:sns:<region>:<12-digit account>:<name>)"
    checked = _require_str(field, value, what)
    match = _TOPIC_ARN.fullmatch(value)
    if match is None:
        raise ValueError(f"'{field}' must be {what} {_got(value)}")
    if region_name is not None and match["region"] != region_name:
        raise ValueError(f"'{field}' must be a topic in aws_region {region_name!r}, because "
                         f"CloudWatch alarms only notify topics in their own region {_got(value)}")
    return checked


def role_arns(field: str, value: Any, *, allow_empty: bool = False) -> tuple[str, ...]:
    """A list of distinct role ARNs. A bare string is refused: it is a sequence of characters,
    and would render as ``"AWS": ["a", "r", "n", ...]``."""
    what = "a list of IAM role ARNs" if allow_empty else "a non-empty list of IAM role ARNs"
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"'{field}' must be {what}, not a single string {_got(value)}"
                         if isinstance(value, str) else f"'{field}' must be {what} {_got(value)}")
    if not value and not allow_empty:
        raise ValueError(f"'{field}' must be {what} {_got(value)}")
    checked = tuple(role_arn(f"{field}[{i}]", arn) for i, arn in enumerate(value))
    unique(field, checked)
    return checked


def email_address(field: str, value: Any) -> str:
    """An address SNS can subscribe; whitespace and non-ASCII look-alikes are refused."""
    checked = _require_str(field, value, "an email address")
    if _EMAIL.fullmatch(value) is None:
        raise ValueError(f"'{field}' must be an email address {_got(value)}")
    return checked


def alias_name(field: str, value: Any) -> str:
    """A KMS alias we may create: 'alias/...' and never in the reserved 'alias/aws/' space."""
    checked = _require_str(field, value, "a KMS alias name starting with 'alias/'")
    if _ALIAS.fullmatch(value) is None:
        raise ValueError(f"'{field}' must be a KMS alias name 'alias/<letters, digits, / _ ->' "
                         f"{_got(value)}")
    if value.startswith("alias/aws/"):
        raise ValueError(f"'{field}' must not use the reserved 'alias/aws/' prefix {_got(value)}")
    return checked


def _integer(field: str, value: Any, what: str) -> int:
    # bool is an int subclass: True must not quietly become 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"'{field}' must be {what} {_got(value)}")
    return value


def deletion_window(field: str, value: Any) -> int:
    """KMS accepts a 7-30 day waiting period; it is the last chance to cancel a deletion."""
    what = "an integer number of days between 7 and 30"
    checked = _integer(field, value, what)
    if not 7 <= value <= 30:
        raise ValueError(f"'{field}' must be {what} {_got(value)}")
    return checked


def retention_days(field: str, value: Any) -> int:
    """One of CloudWatch Logs' retention values, and at least HIPAA's six years."""
    what = (f"a CloudWatch Logs retention value of at least {MIN_AUDIT_RETENTION_DAYS} days "
            f"({', '.join(str(d) for d in CLOUDWATCH_LOGS_RETENTION_DAYS if d >= MIN_AUDIT_RETENTION_DAYS)})")
    checked = _integer(field, value, what)
    if value not in CLOUDWATCH_LOGS_RETENTION_DAYS or value < MIN_AUDIT_RETENTION_DAYS:
        raise ValueError(f"'{field}' must be {what} {_got(value)}")
    return checked


def unique(field: str, values: Iterable[Any], key: Callable[[Any], Any] = lambda value: value) -> None:
    """Duplicates are always a typo or a copy-paste, and a policy should say each thing once.
    ``key`` decides sameness (email addresses compare case-insensitively)."""
    seen: set[Any] = set()
    for index, value in enumerate(values):
        if key(value) in seen:
            raise ValueError(f"'{field}[{index}]' duplicates an earlier entry {_got(value)}")
        seen.add(key(value))
