"""CloudFormation ``Metadata.com.aws.cloudformation.Context`` blocks.

Each resource says in the template itself why it exists and which invariants must hold, so a
reviewer reading ``out/<env>.json`` (or a tool: cfn-lint I4010/W4012 validates the schema) sees the
rationale next to the property it explains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["CONTEXT_KEY", "context", "template_context"]

CONTEXT_KEY = "com.aws.cloudformation.Context"


def context(why: str, *, must: Sequence[str] = (), mutable: str | None = None,
            **metadata: Any) -> dict[str, Any]:
    """A resource ``Metadata`` dict: the Context block plus any other metadata (e.g. checkov)."""
    block: dict[str, Any] = {"why": why}
    if must:
        block["must"] = list(must)
    if mutable:
        block["mutable"] = mutable
    return {CONTEXT_KEY: block, **metadata}


def template_context(arch: str, must: Sequence[str]) -> dict[str, Any]:
    return {CONTEXT_KEY: {"arch": arch, "must": list(must)}}
