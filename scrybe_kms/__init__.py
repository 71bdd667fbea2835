"""scrybe_kms: Scrybe's PHI encryption key, its audit trail and its alarms as CloudFormation.

Data flows one way: :class:`EnvironmentConfig` -> builders -> :func:`build_template` -> files.
Other stacks import the key with :func:`kms_key_arn` and friends.
"""

from scrybe_kms.config import ConfigError, EnvironmentConfig
from scrybe_kms.outputs import (
    audit_logs_bucket,
    cloudtrail_arn,
    import_output,
    kms_key_alias,
    kms_key_arn,
    kms_key_id,
)
from scrybe_kms.template import build_template, render

__all__ = [
    "ConfigError",
    "EnvironmentConfig",
    "audit_logs_bucket",
    "build_template",
    "cloudtrail_arn",
    "import_output",
    "kms_key_alias",
    "kms_key_arn",
    "kms_key_id",
    "render",
]
__version__ = "0.1.0"
