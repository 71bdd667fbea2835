"""The stack policy: what no stack update may replace or delete.

Derived from the template itself, so it cannot drift from it. Every resource in these stacks is a
control (a key, the evidence, the trail, a policy, a filter, an alarm, the topics and the rule), so
every resource is protected against ``Update:Replace`` and ``Update:Delete`` (issue 11: an update
must not strip a protection). Key aliases are protected against every update: changing an alias's
target would point anything using it at another key. A deliberate replacement needs a temporary
override (``--stack-policy-during-update-body``), which CloudTrail records.

:func:`protected_resources` is the narrower set whose loss loses data (what ``DeletionPolicy:
Retain`` keeps); the deploy command refuses locally to replace or remove those.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["control_resources", "protected_resources", "render_stack_policy", "stack_policy"]

#: Why each kind of resource is a control, for the plan and the README.
WHY = {
    "AWS::KMS::Key": "a KMS key: replacing or deleting it loses every record encrypted under it",
    "AWS::KMS::ReplicaKey": "a replica of the PHI key: the only key in its region that decrypts the data there",
    "AWS::KMS::Alias": "a key alias: retargeting or removing it moves its users to another key",
    "AWS::S3::Bucket": "an audit-log bucket: HIPAA audit evidence",
    "AWS::S3::BucketPolicy": "an audit bucket's policy: TLS-only, the version-deletion deny, CloudTrail's access",
    "AWS::Logs::LogGroup": "the audit log group: HIPAA audit evidence, and the metric filters' source",
    "AWS::CloudTrail::Trail": "the audit trail: records every use of the key",
    "AWS::IAM::Role": "a service's role on the audit path (log delivery, replication, event forwarding)",
    "AWS::IAM::Policy": "what the replication role may read, write and decrypt",
    "AWS::Logs::MetricFilter": "a metric filter feeding an alarm",
    "AWS::CloudWatch::Alarm": "an alarm",
    "AWS::SNS::Topic": "an alarm topic",
    "AWS::SNS::TopicPolicy": "who may publish alarms",
    "AWS::Events::Rule": "the EventBridge channel for the watched events",
    "AWS::SQS::Queue": "the EventBridge rule's dead-letter queue",
    "AWS::SQS::QueuePolicy": "who may write to the dead-letter queue",
}


def control_resources(template: Mapping[str, Any]) -> dict[str, str]:
    """``{logical id: why}`` for every resource: each one guards the key or its audit."""
    return {title: WHY.get(resource.get("Type", ""), "part of the key's protection")
            for title, resource in sorted(template.get("Resources", {}).items())}


def protected_resources(template: Mapping[str, Any]) -> dict[str, str]:
    """``{logical id: why}`` for the resources whose loss loses data or redirects key use:
    every retained resource, and key aliases."""
    return {title: why for title, why in control_resources(template).items()
            if template["Resources"][title].get("DeletionPolicy") == "Retain"
            or template["Resources"][title].get("Type") == "AWS::KMS::Alias"}


def stack_policy(template: Mapping[str, Any]) -> dict[str, Any]:
    controls = control_resources(template)
    aliases = [t for t in controls if template["Resources"][t]["Type"] == "AWS::KMS::Alias"]
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Principal": "*", "Action": "Update:*", "Resource": "*"},
        {"Effect": "Deny", "Principal": "*", "Action": ["Update:Replace", "Update:Delete"],
         "Resource": [f"LogicalResourceId/{t}" for t in controls if t not in aliases]},
    ]
    if aliases:
        statements.append({"Effect": "Deny", "Principal": "*", "Action": "Update:*",
                           "Resource": [f"LogicalResourceId/{t}" for t in aliases]})
    return {"Statement": statements}


def render_stack_policy(template: Mapping[str, Any]) -> str:
    return json.dumps(stack_policy(template), indent=1, sort_keys=True) + "\n"
