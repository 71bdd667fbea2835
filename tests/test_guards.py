"""Template rules: a template deploys only to the account and region it was built for."""

from __future__ import annotations

from typing import Any

from scrybe_kms.config import EnvironmentConfig


def test_region_and_account_rules(template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    rules = template["Rules"]
    [region] = rules["DeployOnlyToConfiguredRegion"]["Assertions"]
    assert region["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, cfg.aws_region]}
    assert f"built for region {cfg.aws_region}" in region["AssertDescription"]
    [account] = rules["DeployOnlyToConfiguredAccount"]["Assertions"]
    assert account["Assert"] == {"Fn::Equals": [{"Ref": "AWS::AccountId"}, "123456789012"]}


def test_nothing_secret_or_bypassing_in_any_template(rendered: dict[str, str]) -> None:
    for text in rendered.values():
        assert '"BypassPolicyLockoutSafetyCheck":' not in text  # never as a property, anywhere
        assert "AKIA" not in text and "aws_secret_access_key" not in text.lower()
