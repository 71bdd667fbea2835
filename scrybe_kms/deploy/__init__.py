"""Deploy tooling (the ``deploy`` extra: boto3 and cfn-lint): ``scrybe-kms deploy`` and ``env-config``."""

from scrybe_kms.deploy.errors import DeployError, Interrupted, LostTrack, Refused
from scrybe_kms.deploy.options import DeployOptions
from scrybe_kms.deploy.run import deploy, env_config

__all__ = ["DeployError", "DeployOptions", "Interrupted", "LostTrack", "Refused", "deploy", "env_config"]
