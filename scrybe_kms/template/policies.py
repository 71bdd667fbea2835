"""Policy vocabulary: one action list per permission, and statement builders named for intent.

Everything that decides *who may do what* lives here, so that the key, bucket, trail and topic
builders read like a list of grants, and the tests check the same lists the policies are built
from. Statements carry a ``Sid`` that says why they exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import awacs.kms as kms
import awacs.s3 as s3
import awacs.sns as sns
import awacs.sqs as sqs
from awacs.aws import (
    Action,
    Allow,
    AWSPrincipal,
    Bool,
    Condition,
    ConditionElement,
    Deny,
    PolicyDocument,
    Principal,
    Statement,
)

from scrybe_kms.template import condition_keys as keys

__all__ = [
    "CLOUDTRAIL_DESCRIBE_ACTIONS",
    "CLOUDTRAIL_ENCRYPT_ACTIONS",
    "CRYPTO_ACTIONS",
    "LOG_GROUP_KEY_ACTIONS",
    "action_names",
    "allow_service",
    "append_statements",
    "conditions",
    "deny_insecure_transport",
    "policy_document",
    "role_principal",
    "statement",
]

#: Every KMS operation that reads or produces protected data (or hands that power on).
CRYPTO_ACTIONS: tuple[Action, ...] = (
    kms.Decrypt,
    kms.DeriveSharedSecret,
    kms.Encrypt,
    kms.GenerateDataKey,
    kms.GenerateDataKeyPair,
    kms.GenerateDataKeyPairWithoutPlaintext,
    kms.GenerateDataKeyWithoutPlaintext,
    kms.GenerateMac,
    kms.ReEncryptFrom,
    kms.ReEncryptTo,
    kms.Sign,
    kms.Verify,
    kms.VerifyMac,
)

#: CloudTrail writing encrypted log and digest files (CloudTrail guide, "Granting encrypt permissions").
CLOUDTRAIL_ENCRYPT_ACTIONS: tuple[Action, ...] = (kms.Action("GenerateDataKey*"),)
#: CloudTrail checking the key when a trail is created or updated.
CLOUDTRAIL_DESCRIBE_ACTIONS: tuple[Action, ...] = (kms.DescribeKey,)
#: CloudWatch Logs encrypting a log group (CloudWatch Logs guide, "Encrypt log data using AWS KMS").
LOG_GROUP_KEY_ACTIONS: tuple[Action, ...] = (
    kms.Action("Encrypt*"),
    kms.Action("Decrypt*"),
    kms.Action("ReEncrypt*"),
    kms.Action("GenerateDataKey*"),
    kms.Action("Describe*"),
)

#: Object-level S3 actions the TLS-only statement also has to cover.
S3_ALL: Action = s3.Action("*")
SNS_PUBLISH: Action = sns.Publish
SQS_SEND: Action = sqs.SendMessage
SQS_ALL: Action = sqs.Action("*")


def action_names(actions: Iterable[Action]) -> list[str]:
    """``kms:Decrypt``-style strings, for tests and reports."""
    return [a.JSONrepr() for a in actions]


def conditions(*elements: ConditionElement) -> Condition:
    """Merge condition elements into one ``Condition`` with one entry per operator.

    awacs renders ``Condition([StringEquals(a), StringEquals(b)])`` as a dict keyed by operator,
    silently keeping only the last ``StringEquals``; that would drop a security condition
    without a word. Here keys under the same operator are merged, and a key given twice with
    different values is an error.
    """
    merged: dict[type, dict[str, Any]] = {}
    for element in elements:
        bucket = merged.setdefault(type(element), {})
        for key, value in element.get_dict().items():
            if key in bucket and bucket[key] != value:
                raise ValueError(f"condition key {key!r} given twice under {element.condition} "
                                 f"with different values")
            bucket[key] = value
    return Condition([operator(values) for operator, values in merged.items()])


def statement(effect: Any, sid: str, principal: Principal | str, actions: Sequence[Action],
               resources: Sequence[Any], condition: Condition | None) -> Statement:
    kwargs: dict[str, Any] = {
        "Sid": sid,
        "Effect": effect,
        "Principal": principal if isinstance(principal, Principal) else Principal(principal),
        "Action": list(actions),
        "Resource": list(resources),
    }
    if condition is not None:
        kwargs["Condition"] = condition
    return Statement(**kwargs)


def role_principal(arns: Sequence[Any]) -> AWSPrincipal:
    """Checked role ARNs as an ``AWS`` principal: one string for one role, else a list."""
    return AWSPrincipal(arns[0] if len(arns) == 1 else list(arns))


def allow_service(sid: str, service: Any, actions: Sequence[Action],
                  resources: Sequence[Any] = ("*",), *condition: ConditionElement) -> Statement:
    """An AWS service principal, scoped by the conditions AWS documents for it."""
    return statement(Allow, sid, Principal("Service", service), actions, resources,
                      conditions(*condition) if condition else None)


def deny_insecure_transport(resources: Sequence[Any], actions: Sequence[Action] = (S3_ALL,),
                            sid: str = "DenyInsecureTransport") -> Statement:
    """Refuse every request not made over TLS (Security Hub S3.5)."""
    return statement(Deny, sid, "*", actions, resources, conditions(Bool(keys.SECURE_TRANSPORT, "false")))


def append_statements(document: PolicyDocument, owner: str, statements: Iterable[Statement]) -> None:
    """Add statements to a policy that other builders extend; a repeated ``Sid`` is a bug in the
    caller, never something to merge silently."""
    taken = {s.Sid for s in document.Statement}
    for statement in statements:
        if statement.Sid in taken:
            raise ValueError(f"policy of {owner} already has Sid {statement.Sid!r}")
        taken.add(statement.Sid)
        document.Statement.append(statement)


def policy_document(statements: Iterable[Statement], policy_id: str | None = None) -> PolicyDocument:
    kwargs: dict[str, Any] = {"Version": "2012-10-17", "Statement": list(statements)}
    if policy_id:
        kwargs["Id"] = policy_id
    return PolicyDocument(**kwargs)

