"""The public builders refuse bad input like the configuration does: one ConfigError, every
problem as ``'field' must be ... (got value)``, and nothing added to the template."""

from __future__ import annotations

import json
from typing import Any

import pytest
from troposphere import ImportValue, Template

from scrybe_kms import ConfigError, key_aliases, managed_key
from scrybe_kms.template import key_statements

ADMIN = "arn:aws:iam::123456789012:role/admin"


def new_key(template: Template | None = None, **changes: Any) -> Any:
    kwargs: dict[str, Any] = {"environment": "dev", "description": "d", "admin_role_arns": [ADMIN],
                              "purpose": "p", "why": "w", **changes}
    return managed_key(template or Template(), changes.pop("title", "MyKey"), **kwargs)


@pytest.mark.parametrize(("change", "field", "got"), [
    ({"admin_role_arns": ADMIN}, "admin_role_arns", ADMIN),                      # a str is a Sequence[str]
    ({"admin_role_arns": []}, "admin_role_arns", []),
    ({"admin_role_arns": ["arn:aws:iam::123456789012:root"]}, "admin_role_arns[0]", "arn:aws:iam::123456789012:root"),
    ({"admin_role_arns": ["*"]}, "admin_role_arns[0]", "*"),
    ({"admin_role_arns": [ADMIN, ADMIN]}, "admin_role_arns[1]", ADMIN),
    ({"emergency_role_arn": "arn:aws:iam::123456789012:user/bob"}, "emergency_role_arn",
     "arn:aws:iam::123456789012:user/bob"),
    ({"environment": "qa"}, "environment", "qa"),
    ({"deletion_window_days": 3}, "deletion_window_days", 3),
])
def test_managed_key_refuses(change: dict[str, Any], field: str, got: Any) -> None:
    template = Template()
    with pytest.raises(ConfigError) as raised:
        new_key(template, **change)
    assert any(p.startswith(f"'{field}' ") and p.endswith(f"(got {got!r})") for p in raised.value.problems), \
        raised.value.problems
    assert template.resources == {}


def test_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        new_key(environment="qa", admin_role_arns="x", deletion_window_days=99)
    assert len(raised.value.problems) == 3


def test_intrinsic_functions_pass_through() -> None:
    template = Template()
    new_key(template, emergency_role_arn=ImportValue("security-BreakGlassRoleArn"))
    policy = json.loads(template.to_json())["Resources"]["MyKey"]["Properties"]["KeyPolicy"]
    assert {"Fn::ImportValue": "security-BreakGlassRoleArn"} in [s["Principal"]["AWS"] for s in policy["Statement"]]


@pytest.mark.parametrize(("aliases", "field", "got"), [
    ("alias/x", "aliases", "alias/x"),
    (["scrybe-key"], "aliases[0]", "scrybe-key"),
    (["alias/aws/s3"], "aliases[0]", "alias/aws/s3"),
    (["alias/a", "alias/a"], "aliases[1]", "alias/a"),
    ([], "aliases", []),
])
def test_key_aliases_refuses(aliases: Any, field: str, got: Any) -> None:
    template = Template()
    handle = new_key(template)
    before = set(template.resources)
    with pytest.raises(ConfigError) as raised:
        key_aliases(template, handle, aliases)
    assert any(p.startswith(f"'{field}' ") and p.endswith(f"(got {got!r})") for p in raised.value.problems)
    assert set(template.resources) == before


def test_aliases_that_would_share_a_logical_id_are_refused() -> None:
    template = Template()
    with pytest.raises(ConfigError, match="share the logical ID"):
        key_aliases(template, new_key(template), ["alias/a-b", "alias/a_b"])


def test_statement_builders_refuse_a_single_string() -> None:
    with pytest.raises(ConfigError, match=r"'role_arns' must be a non-empty list of IAM role ARNs, not a single"):
        key_statements.allow_key_use("S", ADMIN)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"'role_arns\[0\]' must be an IAM role ARN"):
        key_statements.allow_key_use("S", ["arn:aws:iam::123456789012:root"])


def test_environment_is_one_type_refused_alike_everywhere() -> None:
    import scrybe_kms

    for call in (lambda: scrybe_kms.kms_key_arn("qa"), lambda: new_key(environment="qa")):  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"'environment' must be one of dev, staging, production \(got 'qa'\)"):
            call()
