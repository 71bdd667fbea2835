"""Who may use the PHI key, from the configuration: the application, roles that use it through AWS
services, auditors reading the logs, AWS Backup and the compliance tools.

Every statement is built by :mod:`scrybe_kms.template.key_statements` with the conditions AWS
documents; this module only decides which statements a configuration gets, and their ``Sid``s.
"""

from __future__ import annotations

import re

from troposphere import Ref, Sub

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.config.services import SERVICES
from scrybe_kms.template import key_statements
from scrybe_kms.template.key import KeyHandle

__all__ = ["COMPLIANCE_SERVICE_ROLES", "add_compliance_readers", "add_key_users", "via_endpoints"]

#: Service-linked roles that read key metadata for compliance checks (decision D15), by their
#: documented ``aws-service-role/<service principal>/<name>`` path, with what each reads.
COMPLIANCE_SERVICE_ROLES = {
    "AwsConfigReadsKeyMetadata": ("aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig",
                                  key_statements.CONFIG_READ_ACTIONS),
    "AccessAnalyzerReadsKeyMetadata": (
        "aws-service-role/access-analyzer.amazonaws.com/AWSServiceRoleForAccessAnalyzer",
        key_statements.ACCESS_ANALYZER_READ_ACTIONS),
}

ACCOUNT = Ref("AWS::AccountId")
#: What AWS Backup reaches keys through: itself, and the services whose resources it copies (D18).
BACKUP_VIA = ("backup", "dynamodb", "ebs", "rds", "s3")


def via_endpoints(services: tuple[str, ...] | list[str]) -> list[Sub]:
    """``kms:ViaService`` values for this stack's region, in a stable order."""
    return [Sub(SERVICES[s].endpoint + ".${AWS::Region}.amazonaws.com") for s in sorted(services)]


def _sid_name(role_arn: str) -> str:
    """``arn:...:role/path/scrybe-prod-deployer`` -> ``ScrybeProdDeployer`` (role names are unique
    in an account, whatever their path)."""
    name = role_arn.rsplit("/", 1)[-1]
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[^A-Za-z0-9]+", name) if w)


def add_key_users(phi: KeyHandle, cfg: EnvironmentConfig, *, log_readers: bool = True) -> None:
    """The application's crypto use (optionally only through named services), every role that uses
    the key through AWS services, log readers (``log_readers``: CloudTrail's files, home region only)
    and AWS Backup."""
    app_via = via_endpoints(list(cfg.application_role_only_via_services))
    phi.add_statement(key_statements.allow_key_use(
        "ApplicationUsesKeyOnlyThroughServices" if app_via else "ApplicationUsesKeyForCryptoOnly",
        [cfg.application_role_arn], via_services=app_via, account=ACCOUNT))
    for user in cfg.service_key_users:
        name = _sid_name(user.role_arn)
        phi.add_statement(key_statements.allow_key_use(
            f"{name}UsesKeyOnlyThroughServices", [user.role_arn],
            via_services=via_endpoints(user.services), account=ACCOUNT))
        granting = [s for s in user.services if SERVICES[s].grants]
        if granting:
            phi.add_statement(key_statements.allow_aws_resource_grants(
                f"{name}GrantsOnlyForAwsResources", [user.role_arn],
                via_services=via_endpoints(granting), account=ACCOUNT))
    if log_readers and cfg.audit_log_reader_role_arns:
        phi.add_statement(key_statements.allow_log_readers(
            "AuditorsDecryptCloudTrailLogsOnlyThroughS3", cfg.audit_log_reader_role_arns,
            s3_endpoint=via_endpoints(["s3"])[0], account=ACCOUNT))
    if cfg.backup_role_arn:
        phi.add_statement(*key_statements.allow_backup(
            "BackupRoleUsesKeyOnlyThroughBackup", cfg.backup_role_arn,
            via_services=via_endpoints(list(BACKUP_VIA)), account=ACCOUNT))


def add_compliance_readers(key: KeyHandle, cfg: EnvironmentConfig) -> None:
    """AWS Config and IAM Access Analyzer read this key's metadata (when enabled in the config)."""
    if not cfg.compliance_tools_read_key_metadata:
        return
    for sid, (path, actions) in COMPLIANCE_SERVICE_ROLES.items():
        role = Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/" + path)
        key.add_statement(key_statements.allow_compliance_reader(sid, role, actions, ACCOUNT))
