"""The CloudTrail events that must wake someone, as one catalogue rendered two ways.

Each :class:`WatchedEvent` names an event source, the API calls, and the field that ties a call to
*our* resource (the key ARN in ``resources[0]``, the alias name, the trail name, the bucket name,
...). From it come both the CloudWatch Logs metric filter pattern and the EventBridge pattern, so
the two channels cover the same events by construction (``tests/test_watched_events.py`` checks
them against the same sample records). Only calls that succeeded count (``errorCode`` absent):
failed calls belong to the access-denied burst alarm (decision D24).

Record shapes: KMS puts the key in ``resources[0]`` for key operations, but alias operations list
the alias and the key in varying order, so they are matched on ``requestParameters.aliasName``;
CloudTrail calls carry the trail as ``requestParameters.name`` (or ``trailName``), as the caller
passed it, name or ARN; S3 bucket calls carry ``requestParameters.bucketName`` (decision D25).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Match", "WatchedEvent", "event_pattern", "filter_pattern"]


@dataclass(frozen=True)
class Match:
    """``field`` (a dotted path in the CloudTrail record) equals one of ``values`` (``*`` stands for
    any characters, in both pattern languages); ``absent`` instead requires the field to be missing."""

    field: str
    values: tuple[Any, ...] = ()
    absent: bool = False


@dataclass(frozen=True)
class WatchedEvent:
    """One alarm's events: ``source`` (e.g. ``kms``), API calls, and what ties them to us. Every
    entry of ``any_of`` is a set of matches that must all hold; one entry holding is enough."""

    title: str
    description: str
    #: ``kms``, ``cloudtrail``, ``s3`` ...; ``None``: any service.
    source: str | None
    #: API calls; empty: any call.
    event_names: tuple[str, ...]
    any_of: tuple[tuple[Match, ...], ...] = ((),)
    #: ``True``: also failed calls (only the access-denied burst wants them).
    include_failures: bool = False


def _term(match: Match) -> str:
    if match.absent:
        return f"($.{match.field} NOT EXISTS)"
    terms = [f"($.{match.field} IS {str(v).upper()})" if isinstance(v, bool) else f'($.{match.field} = "{v}")'
             for v in match.values]
    return terms[0] if len(terms) == 1 else "(" + " || ".join(terms) + ")"


def filter_pattern(events: Sequence[WatchedEvent]) -> str:
    """A CloudWatch Logs JSON filter pattern matching any of ``events``: per event, the source, the
    calls and "succeeded" once, then its alternatives (CloudWatch Logs caps a pattern at 1,024
    characters, so nothing is repeated)."""
    parts = []
    for event in events:
        names = " || ".join(f'($.eventName = "{n}")' for n in event.event_names)
        base = [f'($.eventSource = "{event.source}.amazonaws.com")'] if event.source else []
        if names:
            base.append(f"({names})" if len(event.event_names) > 1 else names)
        if not event.include_failures:
            base.append("($.errorCode NOT EXISTS)")
        alternatives = ["(" + " && ".join(_term(m) for m in matches) + ")" if len(matches) > 1 else _term(matches[0])
                        for matches in event.any_of if matches]
        if len(alternatives) > 1:
            base.append("(" + " || ".join(alternatives) + ")")
        elif alternatives:
            base.append(alternatives[0])
        parts.append(" && ".join(base))
    body = parts[0] if len(parts) == 1 else " || ".join(f"({p})" for p in parts)
    return "{ " + body + " }"


def _nest(path: str, leaf: Any) -> dict[str, Any]:
    """``resources[0].ARN`` -> ``{"resources": {"ARN": leaf}}``: EventBridge matches a field inside
    an array of objects if any element matches (KMS key operations name one key)."""
    node: Any = leaf
    for part in reversed(path.replace("[0]", "").split(".")):
        node = {part: node}
    return dict(node)


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _leaf(match: Match) -> list[Any]:
    if match.absent:
        return [{"exists": False}]
    return [{"wildcard": v} if isinstance(v, str) and "*" in v else v for v in match.values]


def event_pattern(events: Sequence[WatchedEvent]) -> dict[str, Any]:
    """An EventBridge pattern ("AWS API Call via CloudTrail") matching any of ``events``: one
    ``$or`` inside ``detail``, one alternative per set of matches (``detail.eventSource`` already
    names the service, so no top-level ``source`` is needed)."""
    alternatives = []
    for event in events:
        for matches in event.any_of:
            detail: dict[str, Any] = {}
            if event.source:
                detail["eventSource"] = [f"{event.source}.amazonaws.com"]
            if event.event_names:
                detail["eventName"] = list(event.event_names)
            if not event.include_failures:
                detail["errorCode"] = [{"exists": False}]
            for match in matches:
                _merge(detail, _nest(match.field, _leaf(match)))
            alternatives.append(detail)
    detail = alternatives[0] if len(alternatives) == 1 else {"$or": alternatives}
    return {"detail-type": ["AWS API Call via CloudTrail"], "detail": detail}
