"""Production: the original's environments/production.tfvars, as scrybe-kms settings.

Build with ``python stacks/production.py`` (writes out/production.json) or ``tox -e build``.
"""

import sys

from scrybe_kms.cli import run_stack

SETTINGS = {
    "environment": "production",
    "aws_region": "us-west-2",
    "application_role_arn": "arn:aws:iam::123456789012:role/scrybe-production-app",
    "admin_role_arns": [
        "arn:aws:iam::123456789012:role/scrybe-admin",
        "arn:aws:iam::123456789012:role/security-team",
    ],
    "emergency_access_role_arn": "arn:aws:iam::123456789012:role/scrybe-emergency",
    "deletion_window_days": 30,
    "alarm_emails": ["security-oncall@scrybe.example"],
    "audit_log_retention_days": 2557,
    # Compliance mode: no one, the account root included, can delete a log version for seven years.
    "audit_log_object_lock": "compliance",
    # Disaster recovery: a replica of the PHI key and a copy of every audit log in us-east-1.
    "disaster_recovery_regions": ["us-east-1"],
    # Consumer stacks keep PHI in S3, RDS, DynamoDB and Secrets Manager under this key. The role that
    # deploys them creates the RDS cluster and DynamoDB tables, which attach the key with grants made
    # through those services (kms:CreateGrant with kms:GrantIsForAWSResource), and writes the first
    # secret value. The application role needs no entry: its own statement already lets it use the
    # key directly and through any service.
    "key_use_through_services": [
        {"role_arn": "arn:aws:iam::123456789012:role/scrybe-production-stack-deployer",
         "services": ["dynamodb", "rds", "s3", "secretsmanager"]},
    ],
    "audit_log_reader_role_arns": ["arn:aws:iam::123456789012:role/scrybe-security-auditor"],
    "backup_role_arn": "arn:aws:iam::123456789012:role/service-role/AWSBackupDefaultServiceRole",
}

if __name__ == "__main__":
    sys.exit(run_stack(SETTINGS, source=__file__))
