"""Configuration layer: the typed, frozen, validated settings of one environment.

Imports no troposphere and no boto3; every other layer builds on it.
"""

from scrybe_kms.config.environment import ConfigError, EnvironmentConfig
from scrybe_kms.config.naming import Environment
from scrybe_kms.config.stackfile import load_stack, stack_config
from scrybe_kms.config.validators import ENVIRONMENTS

__all__ = ["ENVIRONMENTS", "ConfigError", "Environment", "EnvironmentConfig", "load_stack", "stack_config"]
