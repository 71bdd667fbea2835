"""Outputs named after the original's, exported under stable names, and the import helpers."""

from __future__ import annotations

from typing import Any

import pytest

import scrybe_kms
from scrybe_kms.config import EnvironmentConfig


def test_outputs_and_exports(template: dict[str, Any], env: str) -> None:
    outputs = template["Outputs"]
    assert set(outputs) == {"KmsKeyId", "KmsKeyArn", "KmsKeyAlias", "CloudTrailArn", "AuditLogsBucket",
                            "EnvironmentConfig", "AuditKeyArn"}
    # The alarm stack imports it: the filters on the audit key and the EventBridge rule name it.
    assert outputs["AuditKeyArn"]["Value"] == {"Fn::GetAtt": ["AuditKey", "Arn"]}
    for name, output in outputs.items():
        assert output["Export"] == {"Name": f"scrybe-kms-{env}-{name}"}
    assert outputs["KmsKeyId"]["Value"] == {"Ref": "PhiKey"}
    assert outputs["KmsKeyArn"]["Value"] == {"Fn::GetAtt": ["PhiKey", "Arn"]}
    assert outputs["KmsKeyAlias"]["Value"] == f"alias/scrybe-phi-master-key-{env}"
    assert outputs["CloudTrailArn"]["Value"] == {"Fn::GetAtt": ["AuditTrail", "Arn"]}
    assert outputs["AuditLogsBucket"]["Value"] == {"Ref": "AuditLogBucket"}
    assert "(kms_key_arn)" in outputs["KmsKeyArn"]["Description"]


def test_environment_config_is_the_env_snippet(template: dict[str, Any], cfg: EnvironmentConfig) -> None:
    text, variables = template["Outputs"]["EnvironmentConfig"]["Value"]["Fn::Sub"]
    assert text.splitlines() == [
        "AWS_KMS_KEY_ID=${KeyId}",
        "AWS_KMS_KEY_ARN=${KeyArn}",
        "AWS_KMS_REGION=${AWS::Region}",
    ]
    # Never the alias: an admin can retarget an alias, not a key ARN (D12).
    assert "alias/" not in text and "ALIAS" not in text
    assert variables == {"KeyId": {"Ref": "PhiKey"}, "KeyArn": {"Fn::GetAtt": ["PhiKey", "Arn"]}}


def test_import_helpers_match_the_exports(template: dict[str, Any], env: str) -> None:
    helpers = {"KmsKeyArn": scrybe_kms.kms_key_arn, "KmsKeyId": scrybe_kms.kms_key_id,
               "KmsKeyAlias": scrybe_kms.kms_key_alias, "CloudTrailArn": scrybe_kms.cloudtrail_arn,
               "AuditLogsBucket": scrybe_kms.audit_logs_bucket}
    for output, helper in helpers.items():
        assert helper(env).to_dict() == {"Fn::ImportValue": template["Outputs"][output]["Export"]["Name"]}


def test_import_helpers_refuse_unknown_names() -> None:
    with pytest.raises(ValueError, match=r"'environment' must be one of dev, staging, production \(got 'prod'\)"):
        scrybe_kms.kms_key_arn("prod")
    with pytest.raises(ValueError, match=r"'output' must be one of .* \(got 'KeyArn'\)"):
        scrybe_kms.import_output("production", "KeyArn")
