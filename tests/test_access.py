"""Who can do what: every cell of every key's access matrix, evaluated with principalmapper
against the rendered key policy, compared to the answer written down once here."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.derived.access import ACTIONS, evaluate, scenarios

ALL = frozenset(ACTIONS)
NONE: frozenset[str] = frozenset()
CRYPTO = frozenset({"kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
                    "kms:GenerateDataKeyWithoutPlaintext"})
MANAGE = frozenset({"kms:CreateGrant", "kms:PutKeyPolicy", "kms:DisableKey", "kms:ScheduleKeyDeletion",
                    "kms:CancelKeyDeletion", "kms:DisableKeyRotation", "kms:TagResource"})
APP = CRYPTO | {"kms:DescribeKey"}
ADMIN = (MANAGE - {"kms:CreateGrant"}) | {"kms:DescribeKey"}

#: The expected allowed actions per caller, per key. "admin role *" stands for every admin.
EXPECTED: dict[str, dict[str, frozenset[str]]] = {
    "PhiKey": {
        "application role": APP,
        "admin role *": ADMIN,
        "emergency role with MFA": ALL,
        "emergency role without MFA": NONE,
        "other role, same account (IAM kms:*)": NONE,
        "role in another account (IAM kms:*)": NONE,
        "anonymous": NONE,
        "CloudTrail, this trail": frozenset({"kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
                                             "kms:DescribeKey", "kms:Decrypt"}),
        "CloudTrail, another trail": NONE,
        "CloudWatch Logs, this log group": NONE,
        "CloudWatch Logs, another log group": NONE,
        "CloudWatch alarms (topic publish)": NONE,
        "EventBridge (topic publish)": NONE,
    },
    "AuditKey": {
        "application role": NONE,
        "admin role *": ADMIN,
        "emergency role with MFA": ALL,
        "emergency role without MFA": NONE,
        "other role, same account (IAM kms:*)": NONE,
        "role in another account (IAM kms:*)": NONE,
        "anonymous": NONE,
        "CloudTrail, this trail": NONE,
        "CloudTrail, another trail": NONE,
        # AWS's documented statement conditions kms:Describe* on the encryption context, which
        # DescribeKey requests never carry: Logs gets crypto only.
        "CloudWatch Logs, this log group": CRYPTO,
        "CloudWatch Logs, another log group": NONE,
        "CloudWatch alarms (topic publish)": frozenset({"kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
                                                        "kms:Decrypt"}),
        "EventBridge (topic publish)": frozenset({"kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
                                                  "kms:Decrypt"}),
    },
}


def expected_for(key: str, label: str) -> frozenset[str]:
    return EXPECTED[key]["admin role *" if label.startswith("admin role ") else label]


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_every_cell_matches(template: dict[str, Any], cfg: EnvironmentConfig, key: str) -> None:
    grid = evaluate(template, cfg, key)
    wrong = [f"{label} / {action}: {'allowed' if row[action] else 'denied'}"
             for label, row in grid.items() for action in ACTIONS
             if row[action] != (action in expected_for(key, label))]
    assert not wrong, "cells that differ from EXPECTED:\n" + "\n".join(wrong)
    emergency = {"emergency role with MFA", "emergency role without MFA"}
    assert bool(emergency & set(grid)) == bool(cfg.emergency_access_role_arn)
    assert len(grid) == len(scenarios(cfg)) >= 11


def test_separation_of_duties(template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    """Only the MFA-gated emergency role can both manage and use the PHI key; no admin can grant."""
    grid = evaluate(template, cfg)
    for label, row in grid.items():
        uses = any(row[a] for a in CRYPTO)
        manages = any(row[a] for a in MANAGE)
        if uses and manages:
            assert label == "emergency role with MFA", label
        if label.startswith("admin role "):
            assert not row["kms:CreateGrant"], f"{label} could grant itself Decrypt"
            assert not uses


def test_evaluation_can_fail(template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    """The usual default statement (root kms:*) delegates to IAM: the evaluator must then let an
    over-privileged in-account role decrypt, and an explicit Deny must still win."""
    leaky = copy.deepcopy(template)
    statements = leaky["Resources"]["PhiKey"]["Properties"]["KeyPolicy"]["Statement"]
    statements.append({"Sid": "EnableIamUserPermissions", "Effect": "Allow",
                       "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
                       "Action": "kms:*", "Resource": "*"})
    grid = evaluate(leaky, cfg)
    assert grid["other role, same account (IAM kms:*)"]["kms:Decrypt"] is True
    assert grid["role in another account (IAM kms:*)"]["kms:Decrypt"] is False
    statements.append({"Sid": "DenyDecrypt", "Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt",
                       "Resource": "*"})
    grid = evaluate(leaky, cfg)
    assert grid["application role"]["kms:Decrypt"] is False
    assert grid["application role"]["kms:Encrypt"] is True


def test_matrix_file_shows_mfa_only(templates: dict[str, dict[str, Any]]) -> None:
    from tests.helpers import OUT

    text = (OUT / "production.access.md").read_text()
    assert "| emergency role | " + " | ".join(["MFA only"] * len(ACTIONS)) + " |" in text
    assert "| application role | allow | allow | allow | allow | allow | allow | allow | deny |" in text
    assert "emergency" not in (OUT / "dev.access.md").read_text().split("Principals:")[0]
