"""How long audit evidence is kept: lifecycle rules and Object Lock, exact to the configured days.

In a versioned bucket ``Expiration`` only adds a delete marker and makes the object noncurrent;
``NoncurrentVersionExpiration`` counts from then (decision D28). With Object Lock, every version is
locked for ``retention_days`` from its creation and "a locked version of an object cannot be deleted
by a S3 Lifecycle expiration policy", so noncurrent versions can be expired one day after they
become noncurrent: each version is kept at least ``retention_days`` and deleted within about two
days after. Without Object Lock a version made noncurrent early (an overwrite) must still be kept the
full period, so noncurrent versions wait ``retention_days`` (deleted within twice the period).
"""

from __future__ import annotations

from troposphere import s3

from scrybe_kms.config.rules import OBJECT_LOCK_MODES

__all__ = ["LARGE_OBJECT_BYTES", "OBJECT_LOCK_MODES", "lifecycle", "object_lock"]

#: Lifecycle does not transition objects under 128 KB by default, and most CloudTrail log files are
#: smaller; only larger files are archived (D28).
LARGE_OBJECT_BYTES = 128 * 1024


def lifecycle(retention_days: int, *, locked: bool, archive: bool) -> s3.LifecycleConfiguration:
    """Expire each object ``retention_days`` after it was written, clean up what that leaves
    behind, and (``archive``) move large files to cheaper storage as they age."""
    rules = []
    if archive:
        rules.append(s3.LifecycleRule(
            Id="ArchiveLargeLogFiles", Status="Enabled", ObjectSizeGreaterThan=str(LARGE_OBJECT_BYTES),
            Transitions=[s3.LifecycleRuleTransition(StorageClass="GLACIER_IR", TransitionInDays=90),
                         s3.LifecycleRuleTransition(StorageClass="DEEP_ARCHIVE", TransitionInDays=365)],
        ))
    rules += [
        s3.LifecycleRule(
            Id="ExpireAfterRetention", Status="Enabled",
            ExpirationInDays=retention_days,
            NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(NoncurrentDays=1 if locked else retention_days),
            AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(DaysAfterInitiation=7),
        ),
        # A delete marker whose versions are all gone is an "expired object delete marker".
        s3.LifecycleRule(Id="RemoveExpiredDeleteMarkers", Status="Enabled", ExpiredObjectDeleteMarker=True),
    ]
    return s3.LifecycleConfiguration(Rules=rules)


def object_lock(mode: str, retention_days: int) -> s3.ObjectLockConfiguration:
    """Every new version locked for ``retention_days`` (COMPLIANCE: by nobody, root included, until it
    ends; GOVERNANCE: only by a principal allowed ``s3:BypassGovernanceRetention``)."""
    if mode not in OBJECT_LOCK_MODES:
        raise ValueError(f"'audit_log_object_lock' must be one of {', '.join(OBJECT_LOCK_MODES)} or None "
                         f"(got {mode!r})")
    return s3.ObjectLockConfiguration(
        ObjectLockEnabled="Enabled",
        Rule=s3.ObjectLockRule(DefaultRetention=s3.DefaultRetention(Mode=mode.upper(), Days=retention_days)),
    )
