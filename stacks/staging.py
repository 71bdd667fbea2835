"""Staging: production's shape with staging's roles, so what is tested is what ships.

Build with ``python stacks/staging.py`` (writes out/staging.json) or ``tox -e build``.
"""

import sys

from scrybe_kms.cli import run_stack

SETTINGS = {
    "environment": "staging",
    "aws_region": "us-west-2",
    "application_role_arn": "arn:aws:iam::123456789012:role/scrybe-staging-app",
    "admin_role_arns": [
        "arn:aws:iam::123456789012:role/scrybe-admin",
        "arn:aws:iam::123456789012:role/security-team",
    ],
    "emergency_access_role_arn": "arn:aws:iam::123456789012:role/scrybe-emergency",
    "deletion_window_days": 30,
    "alarm_emails": ["security-oncall@scrybe.example"],
    "audit_log_object_lock": "governance",
    "key_use_through_services": [
        {"role_arn": "arn:aws:iam::123456789012:role/scrybe-staging-stack-deployer",
         "services": ["dynamodb", "rds", "s3", "secretsmanager"]},
    ],
    "audit_log_reader_role_arns": ["arn:aws:iam::123456789012:role/scrybe-security-auditor"],
}

if __name__ == "__main__":
    sys.exit(run_stack(SETTINGS, source=__file__))
