"""Deploy tooling (the ``deploy`` extra: boto3 and cfn-lint): ``scrybe-kms deploy`` and ``env-config``."""

from scrybe_kms.deploy.errors import DeployError, Refused
from scrybe_kms.deploy.options import DeployOptions
from scrybe_kms.deploy.run import deploy, env_config

__all__ = ["DeployError", "DeployOptions", "Refused", "deploy", "env_config"]
