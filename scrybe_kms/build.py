"""What the build writes for one environment, as ``{file name: content}``. Pure."""

from __future__ import annotations

import json

from scrybe_kms.access import access_markdown
from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.template import render

__all__ = ["artifacts"]


def artifacts(cfg: EnvironmentConfig) -> dict[str, str]:
    """The template, and the access matrix evaluated from that same rendered template."""
    template = render(cfg)
    return {
        f"{cfg.environment}.json": template,
        f"{cfg.environment}.access.md": access_markdown(json.loads(template), cfg),
    }
