"""cfn-lint, errors, warnings and informational findings, on every rendered template."""

from __future__ import annotations

import json

import pytest
from cfnlint.api import ManualArgs, lint

from scrybe_kms.config import EnvironmentConfig

LINT = ManualArgs(include_checks=["I"], include_experimental=True)


def findings(text: str, region: str) -> list[str]:
    return [str(m) for m in lint(text, config=ManualArgs(**LINT, regions=[region]))]


def test_template_lints_clean(rendered: dict[str, str], env: str, cfg: EnvironmentConfig) -> None:
    assert findings(rendered[env], cfg.aws_region) == []


def test_linter_would_catch_a_broken_template(rendered: dict[str, str]) -> None:
    """Guard against a lint call that checks nothing: a bad window must be reported."""
    broken = json.loads(rendered["dev"])
    broken["Resources"]["PhiKey"]["Properties"]["PendingWindowInDays"] = 3
    assert any("E3034" in f for f in findings(json.dumps(broken), "us-west-2"))


@pytest.mark.parametrize("region", ["eu-central-1", "us-gov-west-1"])
def test_templates_for_other_regions_lint_clean(region: str) -> None:
    from scrybe_kms.template import render
    from tests.helpers import config

    partition = "aws-us-gov" if region.startswith("us-gov") else "aws"
    cfg = config(aws_region=region,
                 application_role_arn=f"arn:{partition}:iam::123456789012:role/app",
                 admin_role_arns=[f"arn:{partition}:iam::123456789012:role/admin"],
                 emergency_access_role_arn=None)
    assert findings(render(cfg), region) == []


def test_alarm_template_lints_clean(alarm_rendered: dict[str, str], env: str, cfg: EnvironmentConfig) -> None:
    assert findings(alarm_rendered[env], cfg.aws_region) == []


def test_filter_template_lints_clean(env: str, cfg: EnvironmentConfig) -> None:
    from scrybe_kms.template import render_filters

    assert findings(render_filters(cfg), cfg.aws_region) == []


def test_replica_templates_lint_clean_in_their_region(configs: dict[str, EnvironmentConfig]) -> None:
    from scrybe_kms.template import render_replica

    linted = [(cfg, region) for cfg in configs.values() for region in cfg.disaster_recovery_regions]
    assert linted, "production names a DR region"
    for cfg, region in linted:
        assert findings(render_replica(cfg, region), region) == [], region


def test_two_dr_regions_lint_clean() -> None:
    """With more than one DR region each replication rule has its own condition."""
    from scrybe_kms.template import render, render_replica
    from tests.helpers import config

    cfg = config(disaster_recovery_regions=["us-east-1", "eu-west-1"])
    assert findings(render(cfg), cfg.aws_region) == []
    assert findings(render_replica(cfg, "eu-west-1"), "eu-west-1") == []
