"""Tags every resource carries, so cost, ownership and data classification show in every console."""

from __future__ import annotations

from troposphere import Tags

__all__ = ["standard_tags"]


def standard_tags(environment: str, **extra: str) -> Tags:
    return Tags(
        Environment=environment,
        DataClassification="PHI",
        Compliance="HIPAA",
        ManagedBy="scrybe-kms",
        **extra,
    )
