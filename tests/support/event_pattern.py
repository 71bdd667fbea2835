"""EventBridge event-pattern matching, as the EventBridge user guide documents it ("Event patterns",
"Content filtering"): every field in the pattern must match; a list of values matches if any
value equals the event's (or, for an array in the event, any element's); ``{"exists": bool}``
tests presence; ``{"wildcard": "a*b"}`` matches a string with ``*`` standing for any characters;
``"$or"`` is a list of sub-patterns of which one must match. Only what the
templates use is implemented; anything else raises, so a test never passes on a pattern this
matcher does not understand."""

from __future__ import annotations

import re
from typing import Any

MISSING = object()


def _leaf(values: list[Any], actual: Any) -> bool:
    candidates = actual if isinstance(actual, list) else [actual]
    for value in values:
        if isinstance(value, dict) and set(value) == {"wildcard"}:
            # "*" matches any run of characters; nothing else is special ("Wildcard matching").
            regex = ".*".join(re.escape(part) for part in value["wildcard"].split("*"))
            if actual is not MISSING and any(isinstance(c, str) and re.fullmatch(regex, c) for c in candidates):
                return True
        elif isinstance(value, dict):
            if set(value) != {"exists"}:
                raise ValueError(f"unsupported content filter {value!r}")
            if (actual is not MISSING) == value["exists"]:
                return True
        elif actual is not MISSING and value in candidates:
            return True
    return False


def matches(pattern: dict[str, Any], event: Any) -> bool:
    for key, expected in pattern.items():
        if key == "$or":
            if not any(matches({**sub}, event) for sub in expected):
                return False
            continue
        if isinstance(event, list):  # an array of objects: any element may match
            return any(matches(pattern, item) for item in event)
        actual = event.get(key, MISSING) if isinstance(event, dict) else MISSING
        if isinstance(expected, dict):
            if actual is MISSING or not matches(expected, actual):
                return False
        elif isinstance(expected, list):
            if not _leaf(expected, actual):
                return False
        else:
            raise ValueError(f"pattern values must be lists or objects (got {expected!r} for {key!r})")
    return True


def as_eventbridge_event(record: dict[str, Any]) -> dict[str, Any]:
    """A CloudTrail record as EventBridge delivers it ("AWS API Call via CloudTrail")."""
    return {"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.kms",
            "account": record["recipientAccountId"], "region": record["awsRegion"], "detail": record}
