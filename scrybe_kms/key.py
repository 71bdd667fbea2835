"""Compatibility alias: ``scrybe_kms.key`` moved to :mod:`scrybe_kms.template.key` in 0.2.0.

Kept because the 0.1 README told other stacks to use ``scrybe_kms.key.managed_key``; new code
should use ``scrybe_kms.managed_key``.
"""

from scrybe_kms.template.key import KeyHandle, key_aliases, managed_key

__all__ = ["KeyHandle", "key_aliases", "managed_key"]
