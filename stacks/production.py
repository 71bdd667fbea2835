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
}

if __name__ == "__main__":
    sys.exit(run_stack(SETTINGS, source=__file__))
