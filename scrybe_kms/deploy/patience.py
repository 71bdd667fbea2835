"""Calls that must not give up at the first throttle: reading a stack that is changing.

botocore already retries each request (``standard`` mode, D42); on top of that, a poll that still
fails transiently is tried again with exponential backoff, because abandoning a stack that is
changing leaves its guards and ``.env`` unset. Only ``is_transient`` failures are retried; any
other error is raised at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from scrybe_kms.deploy.errors import LostTrack, is_transient

__all__ = ["ATTEMPTS", "CAP_SECONDS", "patiently"]

T = TypeVar("T")

#: Tries of one poll before giving up; with a 1 s poll the waits are 1, 2, 4, 8, 16, 30, 30 s.
ATTEMPTS = 8
CAP_SECONDS = 30.0


def patiently(call: Callable[[], T], action: str, pause: float, attempts: int = ATTEMPTS) -> T:
    """``call()``; a transient failure is retried after ``pause``, then twice as long each time
    (at most ``CAP_SECONDS``). Raises ``LostTrack`` once ``attempts`` tries all failed that way."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt == attempts - 1:
                raise LostTrack(f"gave up trying to {action} after {attempts} tries; the last answer was: "
                                f"{exc}") from None
            time.sleep(min(CAP_SECONDS, pause * 2 ** attempt))
    raise AssertionError("unreachable")  # pragma: no cover
