"""What the build writes for one environment, as ``{file name: content}``. Pure."""

from __future__ import annotations

import json

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.derived.access import access_markdown
from scrybe_kms.derived.replica_access import replica_access_markdown
from scrybe_kms.derived.stack_policy import render_stack_policy
from scrybe_kms.template import render, render_alarms, render_filters, render_replica

__all__ = ["artifacts"]


def artifacts(cfg: EnvironmentConfig) -> dict[str, str]:
    """Every stack's template (key, filter, alarm, and one per DR region), and what is derived from
    those same rendered templates: the keys' access matrices and each stack's stack policy."""
    env = cfg.environment
    template, filters, alarms = render(cfg), render_filters(cfg), render_alarms(cfg)
    files = {
        f"{env}.json": template,
        # The text, not the parsed template: the matrix records the SHA-256 of exactly what is written.
        # The filter stack holds the alarms the matrix's notes name.
        f"{env}.access.md": access_markdown(template, cfg, alarm_template=filters),
        f"{env}.filters.json": filters,
        f"{env}.alarms.json": alarms,
    }
    for region in cfg.disaster_recovery_regions:
        replica = render_replica(cfg, region)
        files[f"{env}.replica-{region}.json"] = replica
        files[f"{env}.replica-{region}.access.md"] = replica_access_markdown(replica, cfg, region, json.loads(template))
    for name in [n for n in files if n.endswith(".json")]:
        files[name.removesuffix("json") + "stack-policy.json"] = render_stack_policy(json.loads(files[name]))
    return files
