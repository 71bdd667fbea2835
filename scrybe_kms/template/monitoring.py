"""What the alarm stack watches: every path by which the key's audit or alerts could be silenced,
redirected or erased (the README's threat table), as data.

Values are ``Fn::Sub`` bodies: ``${PhiKeyArn}`` and ``${AuditKeyArn}`` are imported from the key
stack, ``${AWS::...}`` are pseudo parameters; every physical name comes from
:mod:`scrybe_kms.config.naming`.
"""

from __future__ import annotations

from dataclasses import dataclass

from scrybe_kms.config import EnvironmentConfig, naming
from scrybe_kms.template.watched_events import Match, WatchedEvent

__all__ = [
    "ACCESS_DENIED_BURST",
    "CIS_4_5_PATTERN",
    "CIS_4_7_PATTERN",
    "CIS_4_8_PATTERN",
    "KEY_STACK_FILTERS",
    "RULE_GROUPS",
    "LiteralFilter",
    "literal_filters",
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
    "AlarmPath": (("AlarmPathTampered", "AlarmDeliveryTampered"), True),
}
#: Metric filters that live in the key stack, beside what they watch (keys, aliases, the trail, the
#: buckets); the others (alarm path, break-glass) go with the alarm stack (decision D21).
KEY_STACK_FILTERS = frozenset({
    "PhiKeyDisabled", "PhiKeyDeletionScheduled", "PhiKeyPolicyChanged", "PhiKeyGrantCreated", "PhiKeyRotationDisabled",
    "AuditKeyTampered", "KeyAliasChanged", "AuditTrailTampered", "AuditBucketTampered",
    "KmsKeyDisabledOrDeletionScheduledCis47", "CloudTrailConfigurationChangedCis45", "S3BucketPolicyChangedCis48",
    "PhiKeyAccessDeniedBurst",
})
#: Access-denied calls on the PHI key within one 5-minute period that count as probing.
ACCESS_DENIED_BURST = 5

PHI_KEY = (Match("resources[0].ARN", ("${PhiKeyArn}",)),)
AUDIT_KEY = (Match("resources[0].ARN", ("${AuditKeyArn}",)),)
#: Calls that change something (CloudTrail's ``readOnly: false``): reading the logs, describing the
#: rule or the topics is what auditors and scanners do all day, and must not page anyone.
WRITE = Match("readOnly", (False,))
_ACCOUNT = "${AWS::Region}:${AWS::AccountId}"


@dataclass(frozen=True)
class LiteralFilter:
    """A metric filter with a fixed pattern and no EventBridge twin (see :func:`literal_filters`)."""

    title: str
    description: str
    pattern: str
    threshold: int = 1


def _key_event(title: str, name: str, description: str, *extra: Match) -> WatchedEvent:
    return WatchedEvent(title, description, "kms", (name,), ((*PHI_KEY, *extra),))


def _arn(service: str, resource: str) -> str:
    return f"arn:${{AWS::Partition}}:{service}:{_ACCOUNT}:{resource}"


def watched_events(cfg: EnvironmentConfig) -> tuple[WatchedEvent, ...]:
    """Every event both channels report for this configuration."""
    env = cfg.environment
    trail = (naming.trail_name(env), _arn("cloudtrail", "trail/" + naming.trail_name(env)))
    buckets = (naming.audit_bucket_name_sub(env), naming.access_log_bucket_name_sub(env))
    topics = tuple(_arn("sns", naming.alarm_topic_name(env, kind)) for kind in ("alarms", "watchdog"))
    # The queue URL as the caller passed it: the current and the legacy SQS endpoint forms (only a
    # trailing * is documented as a wildcard in filter patterns, so both are spelled out).
    queue = tuple(f"https://{host}/${{AWS::AccountId}}/{naming.dead_letter_queue_name(env)}"
                  for host in ("sqs.${AWS::Region}.amazonaws.com", "${AWS::Region}.queue.amazonaws.com"))
    rule = naming.event_rule_name(env, "audit-events")  # every rule's name starts with it
    found = [
        _key_event("PhiKeyDisabled", "DisableKey",
                   "The PHI master key was disabled: the application can no longer encrypt or decrypt PHI. "
                   "Re-enable it (kms:EnableKey) if this was not planned."),
        _key_event("PhiKeyDeletionScheduled", "ScheduleKeyDeletion",
                   "Deletion of the PHI master key was scheduled: every record encrypted under it becomes "
                   "unreadable when the waiting period ends. Cancel with kms:CancelKeyDeletion."),
        _key_event("PhiKeyPolicyChanged", "PutKeyPolicy",
                   "The PHI key policy was replaced. Admins keep PutKeyPolicy (KMS requires it), so this is how "
                   "an admin could grant itself Decrypt: review the new policy now."),
        # A grant an AWS service makes for a resource it manages carries userIdentity.invokedBy (D20).
        _key_event("PhiKeyGrantCreated", "CreateGrant",
                   "A grant was created directly on the PHI key (not by an AWS service for a resource it "
                   "manages); grants give key use outside the key policy. Find out why.",
                   Match("userIdentity.invokedBy", absent=True)),
        _key_event("PhiKeyRotationDisabled", "DisableKeyRotation",
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
        WatchedEvent("AuditBucketTampered",
                     "A control of an audit-log bucket changed (policy, lifecycle, versioning, Object Lock, "
                     "encryption, logging, public access, replication, ACL or ownership): audit evidence may be "
                     "exposed or erased. Review the change now.",
                     "s3", ("PutBucketPolicy", "DeleteBucketPolicy", "PutBucketLifecycle", "DeleteBucketLifecycle",
                            "PutBucketVersioning", "PutObjectLockConfiguration", "PutBucketEncryption",
                            "DeleteBucketEncryption", "PutBucketLogging", "PutBucketPublicAccessBlock",
                            "DeleteBucketPublicAccessBlock", "PutBucketReplication", "DeleteBucketReplication",
                            "PutBucketAcl", "PutBucketOwnershipControls", "DeleteBucketOwnershipControls",
                            "DeleteBucket"),
                     ((Match("requestParameters.bucketName", buckets),),)),
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
                          Match("requestParameters.topicArn", topics)),
                         (WRITE, Match("eventSource", ("sns.amazonaws.com",)),
                          Match("requestParameters.subscriptionArn", tuple(t + ":*" for t in topics))),
                         (WRITE, Match("eventSource", ("sqs.amazonaws.com",)),
                          Match("requestParameters.queueUrl", queue)),
                     )),
    ]
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


def literal_filters() -> tuple[LiteralFilter, ...]:
    """Filter-only alarms: the CIS patterns (account-wide, verbatim), and a burst count EventBridge
    cannot express (it matches events, it does not count them)."""
    return (
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
                      '($.errorCode = "AccessDeniedException")) && ($.resources[0].ARN = "${PhiKeyArn}") }',
                      threshold=ACCESS_DENIED_BURST),
    )
