"""Sample CloudTrail records, shaped like the ones KMS and STS write."""

from __future__ import annotations

from typing import Any

ACCOUNT = "123456789012"
REGION = "us-west-2"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0000ffff-0000-ffff-0000-ffff0000ffff"
AUDIT_KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/aaaa1111-aa11-aa11-aa11-aaaaaa111111"
ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/scrybe-admin"


def kms_event(event_name: str, key_arn: str = KEY_ARN, *, role_arn: str = ADMIN_ROLE,
              error_code: str | None = None, source: str = "kms.amazonaws.com") -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": role_arn.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/") + "/session",
            "accountId": ACCOUNT,
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "arn": role_arn, "accountId": ACCOUNT},
                "attributes": {"mfaAuthenticated": "false"},
            },
        },
        "eventTime": "2026-11-28T12:00:00Z",
        "eventSource": source,
        "eventName": event_name,
        "awsRegion": REGION,
        "requestParameters": {"keyId": key_arn},
        "responseElements": None,
        "readOnly": False,
        "resources": [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": key_arn}],
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    if error_code:
        event["errorCode"] = error_code
        event["errorMessage"] = "User is not authorized to perform this operation"
    return event


def service_grant_event(key_arn: str = KEY_ARN, service: str = "rds.amazonaws.com") -> dict[str, Any]:
    """CreateGrant made by an AWS service for a resource it manages, in the shape AWS documents
    (DynamoDB developer guide, "Using customer managed keys"): the caller's identity with
    ``invokedBy`` set to the service, the service as grantee and retiring principal."""
    event = kms_event("CreateGrant", key_arn)
    event["userIdentity"]["invokedBy"] = service
    event["sourceIPAddress"] = service
    event["userAgent"] = service
    regional = service.replace(".amazonaws.com", f".{REGION}.amazonaws.com")
    event["requestParameters"] = {
        "keyId": key_arn, "granteePrincipal": regional, "retiringPrincipal": regional,
        "operations": ["Decrypt", "Encrypt", "GenerateDataKey", "ReEncryptFrom", "ReEncryptTo", "DescribeKey",
                       "RetireGrant"]}
    return event


def direct_grant_event(key_arn: str = KEY_ARN, *, role_arn: str = ADMIN_ROLE) -> dict[str, Any]:
    """CreateGrant called directly (KMS developer guide, "CreateGrant" CloudTrail example)."""
    event = kms_event("CreateGrant", key_arn, role_arn=role_arn)
    event["requestParameters"] = {"keyId": key_arn, "granteePrincipal": role_arn,
                                  "operations": ["Decrypt", "RetireGrant"]}
    return event


def assume_role_event(role_arn: str, *, caller_arn: str = ADMIN_ROLE) -> dict[str, Any]:
    event = kms_event("AssumeRole", role_arn=caller_arn, source="sts.amazonaws.com")
    event["requestParameters"] = {"roleArn": role_arn, "roleSessionName": "incident-42"}
    event["resources"] = [{"accountId": ACCOUNT, "type": "AWS::IAM::Role", "ARN": role_arn}]
    return event


def api_event(source: str, event_name: str, request_parameters: dict[str, Any], *, role_arn: str = ADMIN_ROLE,
              error_code: str | None = None, read_only: bool | None = None) -> dict[str, Any]:
    """Any management call: ``source`` like ``cloudtrail``; parameters as the service records them;
    ``readOnly`` as CloudTrail sets it (``Get*``, ``Describe*``, ``List*`` are read-only)."""
    event = kms_event(event_name, role_arn=role_arn, error_code=error_code, source=f"{source}.amazonaws.com")
    event["requestParameters"] = request_parameters
    event["readOnly"] = event_name.startswith(("Get", "Describe", "List", "Filter")) if read_only is None else read_only
    event.pop("resources")
    return event


def alias_event(event_name: str, alias: str, key_arn: str = KEY_ARN, **kwargs: Any) -> dict[str, Any]:
    """CreateAlias / UpdateAlias / DeleteAlias as the KMS developer guide shows them: the alias in
    ``requestParameters.aliasName``; ``resources`` lists the key first for CreateAlias and the alias
    first for UpdateAlias and DeleteAlias."""
    event = kms_event(event_name, key_arn, **kwargs)
    params: dict[str, Any] = {"aliasName": alias}
    if event_name != "DeleteAlias":
        params["targetKeyId"] = key_arn
    event["requestParameters"] = params
    alias_arn = {"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": f"arn:aws:kms:{REGION}:{ACCOUNT}:{alias}"}
    key = {"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": key_arn}
    event["resources"] = [key, alias_arn] if event_name == "CreateAlias" else [alias_arn, key]
    return event
