from __future__ import annotations

import json
from typing import Any

import pytest

from scrybe_kms.config import EnvironmentConfig, load_stack
from scrybe_kms.config.validators import ENVIRONMENTS
from scrybe_kms.template import render, render_alarms, render_filters, render_replica
from tests.helpers import STACKS


@pytest.fixture(scope="session")
def configs() -> dict[str, EnvironmentConfig]:
    return {env: load_stack(STACKS / f"{env}.py") for env in ENVIRONMENTS}


@pytest.fixture(scope="session")
def rendered(configs: dict[str, EnvironmentConfig]) -> dict[str, str]:
    """Every environment rendered once: troposphere checks required properties only here."""
    return {env: render(cfg) for env, cfg in configs.items()}


@pytest.fixture(scope="session")
def templates(rendered: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {env: json.loads(text) for env, text in rendered.items()}


@pytest.fixture(scope="session")
def alarm_rendered(configs: dict[str, EnvironmentConfig]) -> dict[str, str]:
    """Every environment's alarm stack, rendered once."""
    return {env: render_alarms(cfg) for env, cfg in configs.items()}


@pytest.fixture(scope="session")
def alarm_templates(alarm_rendered: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {env: json.loads(text) for env, text in alarm_rendered.items()}


@pytest.fixture(scope="session")
def filter_templates(configs: dict[str, EnvironmentConfig]) -> dict[str, dict[str, Any]]:
    """Every environment's filter stack (the metric filters), rendered once."""
    return {env: json.loads(render_filters(cfg)) for env, cfg in configs.items()}


@pytest.fixture(scope="session")
def replica_rendered(configs: dict[str, EnvironmentConfig]) -> dict[tuple[str, str], str]:
    """Every DR region's template, by (environment, region): production's us-east-1."""
    return {(env, region): render_replica(cfg, region) for env, cfg in configs.items()
            for region in cfg.disaster_recovery_regions}


@pytest.fixture(params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def template(env: str, templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return templates[env]


@pytest.fixture
def alarm_template(env: str, alarm_templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return alarm_templates[env]


@pytest.fixture
def filter_template(env: str, filter_templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return filter_templates[env]


@pytest.fixture
def cfg(env: str, configs: dict[str, EnvironmentConfig]) -> EnvironmentConfig:
    return configs[env]
