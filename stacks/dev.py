"""Dev: the shortest deletion window KMS allows and no break-glass role; everything else
(rotation, policy, trail, alarms) is as strict as production.

Build with ``python stacks/dev.py`` (writes out/dev.json) or ``tox -e build``.
"""

import sys

from scrybe_kms.cli import run_stack

SETTINGS = {
    "environment": "dev",
    "aws_region": "us-west-2",
    "application_role_arn": "arn:aws:iam::123456789012:role/scrybe-dev-app",
    "admin_role_arns": ["arn:aws:iam::123456789012:role/scrybe-admin"],
    "deletion_window_days": 7,
    "alarm_emails": ["dev-alerts@scrybe.example"],
    # Governance: a role allowed s3:BypassGovernanceRetention can still clean dev logs up.
    "audit_log_object_lock": "governance",
    # Dev has no break-glass role; its auditor can still read the S3 copy of the logs.
    "audit_log_reader_role_arns": ["arn:aws:iam::123456789012:role/scrybe-dev-auditor"],
}

if __name__ == "__main__":
    sys.exit(run_stack(SETTINGS, source=__file__))
