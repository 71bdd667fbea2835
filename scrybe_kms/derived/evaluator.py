"""Evaluate one request against one KMS key policy, the way AWS documents it. Pure, stdlib only.

Why our own: principalmapper (unmaintained) answered "no match" for ``Principal: {"AWS": "*"}``
(a false deny) and ignored ``StringNotLike`` on a missing key (a false allow). This module supports
a small, exact subset of the policy language and raises :class:`UnsupportedPolicy` (a
``ValueError``) on anything else, so an unknown shape can never silently allow or deny.

The model is a key policy that does not delegate to the account: no IAM policy can grant access
(https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html), so the key policy alone
decides: an applicable Deny wins, else an applicable Allow, else the implicit deny
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html).
If a policy does name an account (``arn:...:iam::<id>:root`` or ``<id>``), that delegates to the
account's IAM policies (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html):
an Allow then matches the account's roles only when ``iam_allows`` says their IAM policies allow the
request; a Deny naming the account matches all of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

__all__ = ["Decision", "Request", "UnsupportedPolicy", "evaluate", "prepare"]

OPERATORS_URL = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html"


class UnsupportedPolicy(ValueError):
    """A policy element or operator this evaluator does not model: refuse rather than guess."""


@dataclass(frozen=True)
class Request:
    """One caller, one action, one resource. ``principal_arn`` is an IAM role (or other IAM
    principal) ARN, ``service`` a service principal name such as ``cloudtrail.amazonaws.com``;
    both ``None`` is an anonymous caller. ``context`` is the request context: keys as AWS
    names them (matched case-insensitively), values a string or, for multivalued keys, a list."""

    principal_arn: str | None
    service: str | None
    action: str
    resource: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """The answer, and which statements (Sid, or ``#<index>``) produced it."""

    allowed: bool
    reason: Literal["explicit deny", "allow", "implicit deny"]
    statements: tuple[str, ...] = ()


@lru_cache(maxsize=1024)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _like(value: str, glob: str, ignore_case: bool = False) -> bool:
    """``*`` any run of characters, ``?`` one character (Action, Resource, StringLike)."""
    return _pattern(glob, ignore_case).fullmatch(value) is not None


def _arn_like(value: str, pattern: str) -> bool:
    """ArnEquals/ArnLike: case-sensitive, each of the six colon-separated parts matched on its own
    with ``*``/``?``; the last part (the resource) may itself hold colons. See OPERATORS_URL#Conditions_ARN."""
    got, want = value.split(":", 5), pattern.split(":", 5)
    return len(got) == len(want) == 6 and all(_like(g, w) for g, w in zip(got, want, strict=True))


def _numeric_equals(value: str, wanted: str) -> bool:
    if not re.fullmatch(r"-?\d+(\.\d+)?", wanted):
        raise UnsupportedPolicy(f"NumericEquals needs a number, got {wanted!r}")
    return bool(re.fullmatch(r"-?\d+(\.\d+)?", value)) and float(value) == float(wanted)


#: Base operator -> (request value, policy value) -> match. ArnEquals behaves as ArnLike (both take
#: wildcards); Bool compares "true"/"false" without regard to case.
_MATCH: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": str.__eq__,
    "StringNotEquals": str.__eq__,
    "StringEqualsIgnoreCase": lambda v, p: v.lower() == p.lower(),
    "StringLike": _like,
    "StringNotLike": _like,
    "ArnEquals": _arn_like,
    "ArnLike": _arn_like,
    "ArnNotEquals": _arn_like,
    "ArnNotLike": _arn_like,
    "Bool": lambda v, p: v.lower() == p.lower(),
    "NumericEquals": _numeric_equals,
}
#: Negated operators: true when no policy value matches (NOR), and true when the key is missing.
_NEGATED = frozenset({"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike"})
_SET_BASES = frozenset({"StringEquals", "StringLike"})


def _strings(raw: Any, where: str) -> list[str]:
    """A value or list of values as strings (JSON true/false/numbers as AWS reads them)."""
    out = [("true" if v else "false") if isinstance(v, bool) else str(v) if isinstance(v, int | float) else v
           for v in (raw if isinstance(raw, list) else [raw])]
    if not out or not all(isinstance(v, str) for v in out):
        raise UnsupportedPolicy(f"{where}: expected a string or a list of strings, got {raw!r}")
    if any("${" in v for v in out):
        raise UnsupportedPolicy(f"{where}: policy variables are not supported ({raw!r})")
    return out


@lru_cache(maxsize=256)
def _operator(operator: str) -> tuple[str, str, bool]:
    """``ForAnyValue:StringLikeIfExists`` -> ``("ForAnyValue", "StringLike", True)``; anything this
    module does not model raises."""
    qualifier, _, base = operator.rpartition(":")
    if qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise UnsupportedPolicy(f"unknown condition operator {operator!r}")
    if_exists = base.endswith("IfExists") and base != "IfExists"
    base = base.removesuffix("IfExists") if if_exists else base
    if (base not in _MATCH and base != "Null") or (base == "Null" and if_exists):
        raise UnsupportedPolicy(f"unknown condition operator {operator!r}")
    if qualifier and (base not in _SET_BASES or if_exists):
        raise UnsupportedPolicy(f"{operator!r}: set operators are supported on StringEquals/StringLike only")
    return qualifier, base, if_exists


def _check_values(operator: str, wanted: list[str]) -> None:
    """Policy-side checks that do not depend on the request (so they raise even behind a false one)."""
    _, base, _ = _operator(operator)
    for number in wanted if base == "NumericEquals" else ():
        _numeric_equals("0", number)
    if base == "Null" and any(w.lower() not in ("true", "false") for w in wanted):
        raise UnsupportedPolicy(f"Null takes 'true' or 'false', got {wanted!r}")


def _condition(operator: str, key: str, wanted: list[str], context: Mapping[str, list[str]]) -> bool:
    """One operator on one key. Missing keys follow OPERATORS_URL ("Important" box): positive
    operators are false, negated ones true, ``...IfExists`` true, ``Null`` tests presence;
    ForAllValues is true and ForAnyValue false on a missing or empty key
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html)."""
    qualifier, base, if_exists = _operator(operator)
    values = context.get(key.lower(), [])
    if base == "Null":  # "true": the key must be absent; "false": present. Several values: OR.
        return any((w.lower() == "true") == (not values) for w in wanted)
    if not values:
        if qualifier:
            return qualifier == "ForAllValues"
        return if_exists or base in _NEGATED
    match = _MATCH[base]
    hits = [any(match(v, w) for w in wanted) for v in values]
    if qualifier == "ForAnyValue":
        return any(hits)
    if qualifier == "ForAllValues":
        return all(hits)
    if len(values) != 1:
        raise UnsupportedPolicy(f"{key!r} has several values: {operator!r} needs ForAnyValue:/ForAllValues:")
    return not hits[0] if base in _NEGATED else hits[0]


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UnsupportedPolicy(f"{where}: expected an object, got {value!r}")
    return value


@lru_cache(maxsize=1024)
def _account(value: str) -> str | None:
    """The account a principal value names: ``123456789012`` or ``arn:<p>:iam::123456789012:root``."""
    found = re.fullmatch(r"(\d{12})|arn:[^:]+:iam::(\d{12}):root", value)
    return (found.group(1) or found.group(2)) if found else None


@dataclass(frozen=True)
class _Principal:
    """A statement's Principal, parsed once: ``everyone`` for ``"*"``/``{"AWS": "*"}``, the
    service names, and each AWS value with the account it names (if it names one)."""

    everyone: bool
    services: frozenset[str]
    aws: tuple[tuple[str, str | None], ...]


def _parse_principal(element: Any) -> _Principal:
    if element == "*":
        return _Principal(True, frozenset(), ())
    services: set[str] = set()
    aws: list[tuple[str, str | None]] = []
    for kind, raw in _mapping(element, "Principal").items():
        values = _strings(raw, f"Principal/{kind}")
        if kind == "Service":
            services.update(values)
        elif kind == "AWS":
            aws += [(value, _account(value)) for value in values]
        else:
            raise UnsupportedPolicy(f"Principal type {kind!r} is not supported")
    return _Principal(any(value == "*" for value, _ in aws), frozenset(services), tuple(aws))


def _principal(element: _Principal, request: Request, callers: list[str], deny: bool, iam_allows: bool) -> bool:
    """``"*"`` and ``{"AWS": "*"}`` are the same and match everyone: roles, service principals and
    anonymous callers (Principal page, "All principals"; AWS's own resource control policy examples
    pair ``"Principal": "*"`` with ``aws:PrincipalIsAWSService`` to exempt services, so "*" covers
    them). A role matches its ARN exactly; a service its name; an account value its root user, and
    (for a Deny, or an Allow the caller's IAM policies also grant) every principal of that account."""
    if element.everyone or (request.service is not None and request.service in element.services):
        return True
    for value, account in element.aws:
        if value in callers or (account and any(
                _account(c) == account  # the account's root user itself
                or ((deny or iam_allows) and c.split(":")[4:5] == [account]) for c in callers)):
            return True
    return False


@dataclass(frozen=True)
class _Prepared:
    """One statement, checked once and parsed for fast evaluation."""

    sid: str
    deny: bool
    principal: _Principal
    #: The Action (or NotAction) patterns as one case-insensitive regular expression.
    actions: re.Pattern[str]
    not_action: bool
    resources: tuple[str, ...]
    not_resource: bool
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...]


_KNOWN = frozenset({"Sid", "Effect", "Principal", "Action", "NotAction", "Resource", "NotResource", "Condition"})


def _pair(statement: Mapping[str, Any], name: str) -> tuple[tuple[str, ...], bool]:
    """Action/NotAction or Resource/NotResource: exactly one of the pair."""
    positive, negative = statement.get(name), statement.get(f"Not{name}")
    if (positive is None) == (negative is None):
        raise UnsupportedPolicy(f"a statement needs exactly one of {name} and Not{name}")
    return tuple(_strings(positive if positive is not None else negative, name)), positive is None


def prepare(policy: Mapping[str, Any]) -> tuple[_Prepared, ...]:
    """Check every statement of ``policy`` once (anything unsupported raises, even in a statement
    that would not apply) and parse it; :func:`evaluate` accepts the result for repeated requests."""
    statements = policy.get("Statement")
    statements = [statements] if isinstance(statements, Mapping) else statements
    if not isinstance(statements, list) or not statements:
        raise UnsupportedPolicy("the policy has no Statement list")
    prepared = []
    for index, raw in enumerate(statements):
        statement = _mapping(raw, f"Statement[{index}]")
        if "NotPrincipal" in statement:
            raise UnsupportedPolicy("NotPrincipal is not supported")
        if unknown := set(statement) - _KNOWN:
            raise UnsupportedPolicy(f"unknown statement elements {sorted(unknown)}")
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise UnsupportedPolicy(f"Effect must be Allow or Deny, got {effect!r}")
        if "Principal" not in statement:
            raise UnsupportedPolicy("a key policy statement needs a Principal")
        principal = _parse_principal(statement["Principal"])
        conditions = []
        for op, keys in _mapping(statement.get("Condition", {}), "Condition").items():
            for key, raw_values in _mapping(keys, op).items():
                wanted = _strings(raw_values, f"{op}/{key}")
                _check_values(op, wanted)
                conditions.append((op, key, tuple(wanted)))
        action_globs, not_action = _pair(statement, "Action")
        actions = re.compile("|".join(f"(?:{_pattern(g, True).pattern})" for g in action_globs),
                             re.DOTALL | re.IGNORECASE)
        resources, not_resource = _pair(statement, "Resource")
        prepared.append(_Prepared(str(statement.get("Sid", f"#{index}")), effect == "Deny", principal, actions,
                                  not_action, resources, not_resource, tuple(conditions)))
    return tuple(prepared)


def _matches(patterns: tuple[str, ...], negated: bool, value: str, match: Callable[[str, str], bool]) -> bool:
    hit = any(p == "*" or match(value, p) for p in patterns)
    return hit if not negated else not hit


def evaluate(policy: Mapping[str, Any] | tuple[_Prepared, ...], request: Request, *,
             iam_allows: bool = False) -> Decision:
    """Decide ``request`` against the key policy ``policy`` (intrinsic functions already resolved).

    Actions match case-insensitively with ``*``/``?``
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html);
    resources like ArnLike, ``"*"`` matching all
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html).
    Context key names are case-insensitive, values as the operator says
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html).
    A role's ARN stands in for ``aws:PrincipalArn`` when the context has none, as AWS reports the
    role ARN for role sessions (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html).
    ``iam_allows``: whether the caller's own IAM policies allow the request; consulted only for
    Allow statements that name the caller's account.
    """
    if request.principal_arn is not None and request.service is not None:
        raise ValueError("a request comes from an IAM principal or a service principal, not both")
    context = {k.lower(): ([v] if isinstance(v, str) else list(v)) for k, v in request.context.items()}
    if request.principal_arn is not None:
        context.setdefault("aws:principalarn", [request.principal_arn])
    callers = context.get("aws:principalarn", []) if request.service is None else []
    statements = policy if isinstance(policy, tuple) else prepare(policy)
    denies: list[str] = []
    allows: list[str] = []
    for statement in statements:
        if ((statement.actions.fullmatch(request.action) is None) == statement.not_action
                and _matches(statement.resources, statement.not_resource, request.resource, _arn_like)
                and _principal(statement.principal, request, callers, statement.deny, iam_allows)
                and all(_condition(op, key, list(wanted), context) for op, key, wanted in statement.conditions)):
            (denies if statement.deny else allows).append(statement.sid)
    if denies:
        return Decision(False, "explicit deny", tuple(denies))
    if allows:
        return Decision(True, "allow", tuple(allows))
    return Decision(False, "implicit deny")
