"""The trail, its CloudWatch Logs copy and the delivery role."""

from __future__ import annotations

from typing import Any

from scrybe_kms.config import EnvironmentConfig
from tests.helpers import statements


def test_trail_settings(template: dict[str, Any], env: str) -> None:
    trail = template["Resources"]["AuditTrail"]
    props = trail["Properties"]
    assert props["TrailName"] == f"scrybe-phi-audit-trail-{env}"
    assert props["IsLogging"] is True
    assert props["IsMultiRegionTrail"] is True
    assert props["IncludeGlobalServiceEvents"] is True
    assert props["EnableLogFileValidation"] is True
    assert props["KMSKeyId"] == {"Fn::GetAtt": ["PhiKey", "Arn"]}
    assert props["S3BucketName"] == {"Ref": "AuditLogBucket"}
    assert props["CloudWatchLogsLogGroupArn"] == {"Fn::GetAtt": ["AuditTrailLogGroup", "Arn"]}
    assert props["CloudWatchLogsRoleArn"] == {"Fn::GetAtt": ["AuditTrailLogDeliveryRole", "Arn"]}
    assert props["EventSelectors"] == [{"IncludeManagementEvents": True, "ReadWriteType": "All"}]
    assert "AdvancedEventSelectors" not in props
    assert "kms.amazonaws.com" not in str(props)  # never in ExcludeManagementEventSources
    assert trail["DependsOn"] == ["AuditLogBucketPolicy"]


def test_log_group_is_encrypted_with_the_audit_key_and_kept(template: dict[str, Any],
                                                            cfg: EnvironmentConfig) -> None:
    group = template["Resources"]["AuditTrailLogGroup"]
    assert group["Properties"] == {
        "LogGroupName": f"/scrybe/kms/{cfg.environment}/cloudtrail",
        "KmsKeyId": {"Fn::GetAtt": ["AuditKey", "Arn"]},
        "RetentionInDays": cfg.audit_log_retention_days,
        "Tags": [{"Key": "Compliance", "Value": "HIPAA"}, {"Key": "DataClassification", "Value": "PHI"},
                 {"Key": "Environment", "Value": cfg.environment}, {"Key": "ManagedBy", "Value": "scrybe-kms"}],
    }
    assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_audit_key_lets_logs_use_it_for_this_log_group_only(template: dict[str, Any], env: str) -> None:
    policy = statements(template["Resources"]["AuditKey"]["Properties"]["KeyPolicy"])
    logs = policy["CloudWatchLogsEncryptTrailLogGroup"]
    assert logs["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    assert logs["Action"] == ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                              "kms:Describe*"]
    assert logs["Condition"] == {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
                   f"/scrybe/kms/{env}/cloudtrail"}}}
    # The application never touches the audit key.
    assert "ApplicationUsesKeyForCryptoOnly" not in policy


def test_delivery_role_is_least_privilege(template: dict[str, Any], env: str) -> None:
    role = template["Resources"]["AuditTrailLogDeliveryRole"]["Properties"]
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Sid": "CloudTrailAssumesRole", "Effect": "Allow",
                      "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": ["sts:AssumeRole"]}]
    assert "RoleName" not in role  # CAPABILITY_IAM is enough
    assert "ManagedPolicyArns" not in role
    [policy] = role["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [{
        "Sid": "WriteTrailEventsToItsLogGroupOnly", "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [{"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
                                 f"/scrybe/kms/{env}/cloudtrail:log-stream:${{AWS::AccountId}}_CloudTrail_*"}],
    }]
