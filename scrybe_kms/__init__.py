"""scrybe_kms: Scrybe's PHI encryption key, its audit trail and its alarms as CloudFormation.

Layers, each a subpackage, imports pointing one way (``tests/test_layers.py`` enforces it)::

    config  ->  template  ->  derived  ->  cli
                   \\-> deploy (an extra: boto3, cfn-lint)

Other stacks import the key with :func:`kms_key_arn` and friends, and may reuse the builders.
Attributes load on first use, so ``import scrybe_kms`` costs almost nothing and loads neither
troposphere's resource modules nor botocore until a name below is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scrybe_kms.config import ENVIRONMENTS, ConfigError, Environment, EnvironmentConfig
    from scrybe_kms.template import build_template, render
    from scrybe_kms.template.bucket import BucketHandle
    from scrybe_kms.template.key import KeyHandle, key_aliases, managed_key
    from scrybe_kms.template.outputs import (
        audit_logs_bucket,
        cloudtrail_arn,
        import_output,
        kms_key_alias,
        kms_key_arn,
        kms_key_id,
    )

__all__ = [
    "ENVIRONMENTS",
    "BucketHandle",
    "ConfigError",
    "Environment",
    "EnvironmentConfig",
    "KeyHandle",
    "__version__",
    "audit_logs_bucket",
    "build_template",
    "cloudtrail_arn",
    "import_output",
    "key_aliases",
    "kms_key_alias",
    "kms_key_arn",
    "kms_key_id",
    "managed_key",
    "render",
]
__version__ = "0.3.0"

_HOME = {
    "ENVIRONMENTS": "scrybe_kms.config",
    "ConfigError": "scrybe_kms.config",
    "Environment": "scrybe_kms.config",
    "EnvironmentConfig": "scrybe_kms.config",
    "build_template": "scrybe_kms.template",
    "render": "scrybe_kms.template",
    "BucketHandle": "scrybe_kms.template.bucket",
    "KeyHandle": "scrybe_kms.template.key",
    "key_aliases": "scrybe_kms.template.key",
    "managed_key": "scrybe_kms.template.key",
    **dict.fromkeys(("audit_logs_bucket", "cloudtrail_arn", "import_output", "kms_key_alias", "kms_key_arn",
                     "kms_key_id"), "scrybe_kms.template.outputs"),
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'scrybe_kms' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
