"""What the alarm stack watches: every path by which the key's audit or alerts could be silenced,
redirected or erased (the README's threat table), as data.

Values are ``Fn::Sub`` bodies: ``${PhiKeyArn}``, ``${PhiKeyId}`` and ``${AuditKeyArn}`` are imported
from the key stack, ``${AWS::...}`` are pseudo parameters; every physical name comes from
:mod:`scrybe_kms.config.naming`.
"""

from __future__ import annotations

from dataclasses import dataclass

from scrybe_kms.config import EnvironmentConfig, naming
from scrybe_kms.template.watched_events import Match, WatchedEvent

__all__ = [
    "ACCESS_DENIED_BURST",
    "ANY_REGION_PHI_KEY",
    "CIS_4_5_PATTERN",
    "CIS_4_7_PATTERN",
    "CIS_4_8_PATTERN",
    "RULE_GROUPS",
    "LiteralFilter",
    "literal_filters",
    "phi_key",
    "watched_events",
]

#: CIS AWS Foundations 4.7, 4.5 and 4.8 character for character: Security Hub CloudWatch.7, .5 and
#: .8 fail if terms are added (decision D11). They are account-wide and stay beside our own filters.
CIS_4_7_PATTERN = ("{($.eventSource=kms.amazonaws.com) && (($.eventName=DisableKey) || "
                   "($.eventName=ScheduleKeyDeletion))}")
CIS_4_5_PATTERN = ("{($.eventName=CreateTrail) || ($.eventName=UpdateTrail) || ($.eventName=DeleteTrail) || "
                   "($.eventName=StartLogging) || ($.eventName=StopLogging)}")
CIS_4_8_PATTERN = ("{($.eventSource=s3.amazonaws.com) && (($.eventName=PutBucketAcl) || "
                   "($.eventName=PutBucketPolicy) || ($.eventName=PutBucketCors) || "
                   "($.eventName=PutBucketLifecycle) || ($.eventName=PutBucketReplication) || "
                   "($.eventName=DeleteBucketPolicy) || ($.eventName=DeleteBucketCors) || "
                   "($.eventName=DeleteBucketLifecycle) || ($.eventName=DeleteBucketReplication))}")
#: The EventBridge rules, each a group of watched events: EventBridge caps a rule's event pattern at
#: 2,048 characters by default (4,096 at most, on request), so one rule cannot hold them all
#: (decision D30). A group's events also go to the watchdog topic when ``watchdog`` is set: the
#: alarm-delivery events report changes to the alarm topic itself.
RULE_GROUPS: dict[str, tuple[tuple[str, ...], bool]] = {
    "PhiKey": (("PhiKeyDisabled", "PhiKeyDeletionScheduled", "PhiKeyPolicyChanged", "PhiKeyGrantCreated",
                "PhiKeyRotationDisabled"), False),
    "AuditKeyAndAliases": (("AuditKeyTampered", "KeyAliasChanged", "EmergencyRoleUsed"), False),
    "TrailAndBuckets": (("AuditTrailTampered", "AuditBucketTampered"), False),
    "DrBuckets": (("DrAuditBucketTampered",), False),
    "AlarmPath": (("AlarmPathTampered", "AlarmDeliveryTampered"), True),
}
#: Access-denied calls on the PHI key within one 5-minute period that count as probing.
ACCESS_DENIED_BURST = 5

#: A multi-Region PHI key in any region: the primary and every replica share the key ID, and only the
#: region differs in their ARNs (decision D47). A leading ``*`` is a documented wildcard in both pattern
#: languages; it also matches a replica someone made outside the configured DR regions.
ANY_REGION_PHI_KEY = "*:${AWS::AccountId}:key/${PhiKeyId}"
AUDIT_KEY = (Match("resources[0].ARN", ("${AuditKeyArn}",)),)
#: Calls that change something (CloudTrail's ``readOnly: false``): reading the logs, describing the
#: rule or the topics is what auditors and scanners do all day, and must not page anyone.
WRITE = Match("readOnly", (False,))


@dataclass(frozen=True)
class LiteralFilter:
    """A metric filter with a fixed pattern and no EventBridge twin (see :func:`literal_filters`)."""

    title: str
    description: str
    pattern: str
    threshold: int = 1


def phi_key(cfg: EnvironmentConfig) -> Match:
    """What ties a KMS record to the PHI key: its ARN, or for a multi-Region key its ID in any region."""
    return Match("resources[0].ARN", (ANY_REGION_PHI_KEY if cfg.multi_region else "${PhiKeyArn}",))


def _key_event(cfg: EnvironmentConfig, title: str, names: tuple[str, ...], description: str,
               *extra: Match) -> WatchedEvent:
    return WatchedEvent(title, description, "kms", names, ((phi_key(cfg), *extra),))


#: S3 calls that change a control of an audit-log bucket.
BUCKET_CONTROL_CALLS = (
    "PutBucketPolicy", "DeleteBucketPolicy", "PutBucketLifecycle", "DeleteBucketLifecycle", "PutBucketVersioning",
    "PutObjectLockConfiguration", "PutBucketEncryption", "DeleteBucketEncryption", "PutBucketLogging",
    "PutBucketPublicAccessBlock", "DeleteBucketPublicAccessBlock", "PutBucketReplication", "DeleteBucketReplication",
    "PutBucketAcl", "PutBucketOwnershipControls", "DeleteBucketOwnershipControls", "DeleteBucket",
)


def _bucket_event(title: str, which: str, names: tuple[str, ...]) -> WatchedEvent:
    return WatchedEvent(title, f"A control of {which} changed (policy, lifecycle, versioning, Object Lock, "
                               "encryption, logging, public access, replication, ACL or ownership): audit evidence may "
                               "be exposed or erased. Review the change now.",
                        "s3", BUCKET_CONTROL_CALLS, ((Match("requestParameters.bucketName", names),),))


def watched_events(cfg: EnvironmentConfig) -> tuple[WatchedEvent, ...]:
    """Every event both channels report for this configuration."""
    env = cfg.environment
    trail = (naming.trail_name(env), naming.trail_arn_sub(env))
    buckets = (naming.audit_bucket_name_sub(env), naming.access_log_bucket_name_sub(env))
    # The DR buckets' names end in "-<region>": a trailing wildcard covers every DR region in a pattern
    # of fixed length (CloudWatch Logs caps a pattern at 1,024 characters).
    dr_buckets = (naming.dr_audit_bucket_name_sub(env, "*"), naming.dr_access_log_bucket_name_sub(env, "*"))
    # Who calls ReplicateKey writes the replica's key policy; UpdatePrimaryRegion moves the primary.
    replicas = ("ReplicateKey", "UpdatePrimaryRegion") if cfg.multi_region else ()
    topics = tuple(naming.alarm_topic_arn_sub(env, kind) for kind in ("alarms", "watchdog"))
    # In any region (a DR region has a watchdog topic and a dead-letter queue of its own): a leading
    # wildcard, the form CloudWatch Logs documents, before the account.
    any_region_topics = tuple(f"*:${{AWS::AccountId}}:{naming.alarm_topic_name(env, kind)}"
                              for kind in ("alarms", "watchdog"))
    # The queue URL as the caller passed it, in any region and either SQS endpoint form
    # (sqs.<region>.amazonaws.com, the legacy <region>.queue.amazonaws.com).
    queue = (f"*.amazonaws.com/${{AWS::AccountId}}/{naming.dead_letter_queue_name(env)}",)
    rule = naming.event_rule_name(env, "audit-events")  # every rule's name starts with it
    found = [
        _key_event(cfg, "PhiKeyDisabled", ("DisableKey",),
                   "The PHI master key was disabled: the application can no longer encrypt or decrypt PHI. "
                   "Re-enable it (kms:EnableKey) if this was not planned."),
        _key_event(cfg, "PhiKeyDeletionScheduled", ("ScheduleKeyDeletion",),
                   "Deletion of the PHI master key was scheduled: every record encrypted under it becomes "
                   "unreadable when the waiting period ends. Cancel with kms:CancelKeyDeletion."),
        _key_event(cfg, "PhiKeyPolicyChanged", ("PutKeyPolicy", *replicas),
                   "The PHI key policy was replaced" + (", or the key was replicated to a region or had its primary "
                                                        "region moved (a replica comes with a policy of its own)"
                                                        if replicas else "")
                   + ". Admins keep PutKeyPolicy (KMS requires it), so this is how an admin could grant itself "
                     "Decrypt: review the new policy now."),
        # A grant an AWS service makes for a resource it manages carries userIdentity.invokedBy (D20).
        _key_event(cfg, "PhiKeyGrantCreated", ("CreateGrant",),
                   "A grant was created directly on the PHI key (not by an AWS service for a resource it "
                   "manages); grants give key use outside the key policy. Find out why.",
                   Match("userIdentity.invokedBy", absent=True)),
        _key_event(cfg, "PhiKeyRotationDisabled", ("DisableKeyRotation",),
                   "Automatic rotation of the PHI key was turned off (Security Hub KMS.4). Re-enable it."),
        WatchedEvent("AuditKeyTampered",
                     "The audit-path key (trail log group) was disabled, scheduled for deletion, re-policied, "
                     "granted or lost rotation: CloudTrail's copy in CloudWatch Logs, and so every metric-filter "
                     "alarm, may stop. The EventBridge rule and the log-delivery heartbeat still report it.",
                     "kms", ("DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy", "DisableKeyRotation", "CreateGrant"),
                     (AUDIT_KEY,)),
        WatchedEvent("KeyAliasChanged",
                     "An alias of the PHI or audit key was created, retargeted or deleted. Applications use the key "
                     "ARN, but anything still using the alias would follow it to another key: check its target.",
                     "kms", ("CreateAlias", "UpdateAlias", "DeleteAlias"),
                     ((Match("requestParameters.aliasName", (*cfg.aliases, naming.audit_alias(env))),),)),
        WatchedEvent("AuditTrailTampered",
                     "The audit trail was stopped, deleted, changed or had its event selectors replaced: the PHI "
                     "key's use may no longer be recorded. Restore it (StartLogging, redeploy the stack).",
                     "cloudtrail", ("StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors",
                                    "PutInsightSelectors"),
                     ((Match("requestParameters.name", trail),), (Match("requestParameters.trailName", trail),))),
        _bucket_event("AuditBucketTampered", "an audit-log bucket", buckets),
        WatchedEvent("AlarmPathTampered",
                     "Part of the alarm path was changed or removed: an alarm (any DeleteAlarms or "
                     "DisableAlarmActions in the account), the trail's log group or its filters, or the EventBridge "
                     "rule and its targets. Review the change now.",
                     None, (), (
                         (Match("eventSource", ("monitoring.amazonaws.com",)),
                          Match("eventName", ("DeleteAlarms", "DisableAlarmActions"))),
                         (Match("eventName", ("PutMetricAlarm",)),
                          Match("requestParameters.alarmName", (naming.alarm_name_prefix(env) + "*",))),
                         (WRITE, Match("eventSource", ("logs.amazonaws.com",)),
                          Match("requestParameters.logGroupName", (naming.log_group_name(env),))),
                         (WRITE, Match("eventSource", ("events.amazonaws.com",)),
                          Match("requestParameters.name", (rule + "*",))),
                         (WRITE, Match("eventSource", ("events.amazonaws.com",)),
                          Match("requestParameters.rule", (rule + "*",))),
                     )),
        WatchedEvent("AlarmDeliveryTampered",
                     "An alarm topic or the dead-letter queue was deleted, re-policied, purged or had its "
                     "subscriptions changed: alarms may no longer reach people. Review the change now.",
                     None, (), (
                         (WRITE, Match("eventSource", ("sns.amazonaws.com",)),
                          Match("requestParameters.topicArn", any_region_topics)),
                         (WRITE, Match("eventSource", ("sns.amazonaws.com",)),
                          Match("requestParameters.subscriptionArn", tuple(t + ":*" for t in topics))),
                         (WRITE, Match("eventSource", ("sqs.amazonaws.com",)),
                          Match("requestParameters.queueUrl", queue)),
                     )),
    ]
    if cfg.multi_region:
        found.append(_bucket_event("DrAuditBucketTampered", "an audit-log copy in a disaster-recovery region",
                                   dr_buckets))
    if cfg.emergency_access_role_arn:
        role = cfg.emergency_access_role_arn
        found.append(WatchedEvent(
            "EmergencyRoleUsed",
            "The break-glass role was assumed or used. Every use must match an open incident; otherwise treat it "
            "as a compromise.",
            None, (), ((Match("userIdentity.sessionContext.sessionIssuer.arn", (role,)),),
                       (Match("eventSource", ("sts.amazonaws.com",)), Match("eventName", ("AssumeRole",)),
                        Match("requestParameters.roleArn", (role,)))),
            include_failures=True))
    return tuple(found)


def literal_filters(cfg: EnvironmentConfig) -> tuple[LiteralFilter, ...]:
    """Filter-only alarms: the CIS patterns (account-wide, verbatim), a burst count EventBridge
    cannot express (it matches events, it does not count them), and with DR the roles of the DR path
    (IAM is global: its events reach EventBridge only in us-east-1, and the trail's log group always)."""
    dr = (LiteralFilter(
        "DrRolesChanged",
        "The audit-log replication role or a DR region's event-forwarding role was changed or deleted: the DR "
        "copies of the audit logs, or the DR region's alarms, may stop. Review the change now.",
        '{ ($.eventSource = "iam.amazonaws.com") && ($.readOnly IS FALSE) && ($.errorCode NOT EXISTS) && '
        f'(($.requestParameters.roleName = "{naming.replication_role_name(cfg.environment)}") || '
        f'($.requestParameters.roleName = "{naming.forwarding_role_name(cfg.environment, "")}*")) }}'),
    ) if cfg.multi_region else ()
    return (*dr,
        LiteralFilter("KmsKeyDisabledOrDeletionScheduledCis47",
                      "CIS 4.7: a customer-managed KMS key in this account was disabled or scheduled for deletion.",
                      CIS_4_7_PATTERN),
        LiteralFilter("CloudTrailConfigurationChangedCis45",
                      "CIS 4.5: a CloudTrail trail in this account was created, updated, deleted, started or stopped.",
                      CIS_4_5_PATTERN),
        LiteralFilter("S3BucketPolicyChangedCis48",
                      "CIS 4.8: an S3 bucket's ACL, policy, CORS, lifecycle or replication changed in this account.",
                      CIS_4_8_PATTERN),
        LiteralFilter("PhiKeyAccessDeniedBurst",
                      f"{ACCESS_DENIED_BURST} or more denied KMS calls on the PHI key within 5 minutes: someone is "
                      "probing for access, or a deployment lost its permissions.",
                      '{ ($.eventSource = "kms.amazonaws.com") && (($.errorCode = "AccessDenied") || '
                      '($.errorCode = "AccessDeniedException")) && '
                      f'($.resources[0].ARN = "{phi_key(cfg).values[0]}") }}',
                      threshold=ACCESS_DENIED_BURST),
    )
