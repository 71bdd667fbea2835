"""What the build writes for one environment, as ``{file name: content}``. Pure."""

from __future__ import annotations

import json

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.derived.access import access_markdown
from scrybe_kms.derived.stack_policy import render_stack_policy
from scrybe_kms.template import render

__all__ = ["artifacts"]


def artifacts(cfg: EnvironmentConfig) -> dict[str, str]:
    """The template, and what is derived from that same rendered template: its access matrix
    and its stack policy."""
    template = render(cfg)
    parsed = json.loads(template)
    return {
        f"{cfg.environment}.json": template,
        # The text, not ``parsed``: the matrix records the SHA-256 of exactly what is written.
        f"{cfg.environment}.access.md": access_markdown(template, cfg),
        f"{cfg.environment}.stack-policy.json": render_stack_policy(parsed),
    }
