"""What the build writes for one environment, as ``{file name: content}``. Pure."""

from __future__ import annotations

import json

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.derived.access import access_markdown
from scrybe_kms.derived.stack_policy import render_stack_policy
from scrybe_kms.template import render, render_alarms

__all__ = ["artifacts"]


def artifacts(cfg: EnvironmentConfig) -> dict[str, str]:
    """The key stack's template and the alarm stack's, and what is derived from those same rendered
    templates: the keys' access matrix and each stack's stack policy."""
    env = cfg.environment
    template, alarms = render(cfg), render_alarms(cfg)
    return {
        f"{env}.json": template,
        # The text, not the parsed template: the matrix records the SHA-256 of exactly what is written.
        f"{env}.access.md": access_markdown(template, cfg, alarm_template=alarms),
        f"{env}.stack-policy.json": render_stack_policy(json.loads(template)),
        f"{env}.alarms.json": alarms,
        f"{env}.alarms.stack-policy.json": render_stack_policy(json.loads(alarms)),
    }
