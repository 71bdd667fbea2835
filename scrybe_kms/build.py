"""What the build writes for one environment, as ``{file name: content}``. Pure."""

from __future__ import annotations

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.template import render

__all__ = ["artifacts"]


def artifacts(cfg: EnvironmentConfig) -> dict[str, str]:
    return {f"{cfg.environment}.json": render(cfg)}
