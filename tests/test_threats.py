"""The README's threat table, proven on the rendered templates.

For every way of silencing, redirecting or erasing the audit (issue 11), the table names what stops
or detects it. Here each detection's delivery path is computed from both stacks (alarm -> metric
filter -> log group -> its key -> the trail and its role; rule -> trail; -> topic -> its policy ->
its key) and must not contain what the attacker tampers with: at least one channel still works while
it happens. Every resource of both stacks must be covered by some row.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.helpers import ROOT, refs


@dataclass(frozen=True)
class Threat:
    name: str
    #: Logical IDs the attacker disables, deletes or changes (a trailing * matches by prefix).
    tampered: tuple[str, ...]
    #: ``alarm:<title>`` (metric or health alarm), ``rule:<title>`` (EventBridge channel), or
    #: ``prevented:<test>`` (a policy refuses it; the test proves the policy).
    detections: tuple[str, ...]
    #: Only environments with disaster-recovery regions have what it names.
    dr_only: bool = False


THREATS = (
    Threat("Point a key alias at another key", ("PhiKeyAlias*", "AuditKeyAlias*"),
           ("alarm:KeyAliasChanged", "rule:KeyAliasChanged",
            "prevented:tests/test_outputs.py::test_environment_config_is_the_env_snippet")),
    Threat("Disable or schedule deletion of the PHI key", ("PhiKey",),
           ("alarm:PhiKeyDisabled", "alarm:PhiKeyDeletionScheduled", "rule:PhiKeyDisabled")),
    Threat("Rewrite the PHI key policy (an admin grants itself Decrypt)", ("PhiKey",),
           ("alarm:PhiKeyPolicyChanged", "rule:PhiKeyPolicyChanged")),
    Threat("Create a grant on the PHI key directly", ("PhiKey",),
           ("alarm:PhiKeyGrantCreated", "rule:PhiKeyGrantCreated")),
    Threat("Brick a key with PutKeyPolicy bypassing the lockout check", ("PhiKey", "AuditKey"),
           ("prevented:tests/test_key_users.py::test_nobody_may_bypass_the_lockout_safety_check",)),
    Threat("Disable, schedule deletion of or re-policy the audit key", ("AuditKey",),
           ("rule:AuditKeyTampered", "alarm:TrailLogDeliveryStopped")),
    Threat("Stop, delete or reconfigure the trail", ("AuditTrail",),
           ("alarm:TrailLogDeliveryStopped", "rule:AuditTrailTampered", "alarm:AuditTrailTampered")),
    Threat("Break CloudTrail's delivery to CloudWatch Logs", ("AuditTrailLogDeliveryRole", "AuditTrailLogGroup"),
           ("alarm:TrailLogDeliveryStopped", "rule:AlarmPathTampered")),
    Threat("Change or delete an audit bucket's policy, lifecycle or versioning",
           ("AuditLogBucket", "AuditLogBucketPolicy", "AuditLogAccessLogBucket", "AuditLogAccessLogBucketPolicy"),
           ("alarm:AuditBucketTampered", "rule:AuditBucketTampered", "alarm:S3BucketPolicyChangedCis48")),
    Threat("Delete or disable an alarm or a metric filter", ("*Alarm", "*Filter"),
           ("rule:AlarmPathTampered",)),
    Threat("Disable, delete or retarget an EventBridge rule", ("AuditEventRule*",),
           ("alarm:AlarmPathTampered",)),
    Threat("Delete the alarm topic or change who may publish to it", ("AlarmTopic", "AlarmTopicPolicy"),
           ("alarm:AuditEventRuleFailed", "alarm:AuditEventsDeadLettered", "alarm:AlarmTopicDeliveryFailed")),
    Threat("Delete the watchdog topic or change its policy", ("WatchdogTopic", "WatchdogTopicPolicy"),
           ("rule:AlarmDeliveryTampered", "alarm:AlarmDeliveryTampered", "alarm:WatchdogTopicDeliveryFailed")),
    Threat("Purge or delete the dead-letter queue", ("AuditEventDeadLetterQueue", "AuditEventDeadLetterQueuePolicy"),
           ("alarm:AlarmDeliveryTampered", "rule:AlarmDeliveryTampered")),
    Threat("Stop the audit-log copies to the DR regions (the replication role, its policy, the bucket's rules)",
           ("AuditLogReplicationRole", "AuditLogReplicationRolePolicy"),
           ("alarm:DrRolesChanged", "alarm:AuditBucketTampered", "rule:AuditBucketTampered"), dr_only=True),
    Threat("Tamper with a DR region's replica key, aliases, audit-log copies or forwarding rule", (),
           ("prevented:tests/test_disaster_recovery.py::test_every_dr_resource_is_watched_from_the_home_region",),
           dr_only=True),
    Threat("Replace or delete a control through a stack update", ("*",),
           ("prevented:tests/test_threats.py::test_stack_policies_cover_every_control_resource",)),
)


def resources(*templates: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for template in templates:
        for title, resource in template["Resources"].items():
            assert title not in found, f"{title} is in both stacks"
            found[title] = resource
    return found


def tampered(threat: Threat, everything: dict[str, Any]) -> set[str]:
    return {t for pattern in threat.tampered for t in everything
            if re.fullmatch(pattern.replace("*", ".*"), t)}


def topic_path(everything: dict[str, dict[str, Any]], topic: str) -> set[str]:
    """A topic, the policies that name it, and whatever its properties reference (e.g. a key)."""
    policies = {t for t, r in everything.items() if r["Type"] == "AWS::SNS::TopicPolicy" and topic in refs(r)}
    return {topic} | policies | (refs(everything[topic].get("Properties", {})) & set(everything))


def log_path(everything: dict[str, dict[str, Any]], log_group_name: Any) -> set[str]:
    """The log group a filter reads, its key, and the trail (with its role) that feeds it."""
    [group] = [t for t, r in everything.items() if r["Type"] == "AWS::Logs::LogGroup"
               and log_group_name in ({"Ref": t}, r["Properties"]["LogGroupName"])]
    path = {group} | refs(everything[group]["Properties"].get("KmsKeyId"))
    for title, resource in everything.items():
        if resource["Type"] == "AWS::CloudTrail::Trail" and group in refs(resource["Properties"]):
            path |= {title} | (refs(resource["Properties"]["CloudWatchLogsRoleArn"]) & set(everything))
    return path


def exported(outputs: dict[str, Any], node: Any) -> set[str]:
    """The logical IDs ``node`` names, an ``Fn::ImportValue`` of another stack's output standing for
    the resource that output exports (the filter stack's alarms import the alarm stack's topics)."""
    found = refs(node)
    imports = [v["Fn::ImportValue"] for v in (node if isinstance(node, list) else [node])
               if isinstance(v, dict) and "Fn::ImportValue" in v]
    for name in imports:
        [output] = [o for o in outputs.values() if o.get("Export", {}).get("Name") == name]
        found |= refs(output["Value"])
    return found


def channels(everything: dict[str, dict[str, Any]], detection: str, outputs: dict[str, Any]) -> list[set[str]]:
    """Each delivery path of one detection (one per topic it notifies)."""
    kind, _, title = detection.partition(":")
    if kind == "alarm":
        alarm = everything[f"{title}Alarm"]["Properties"]
        base = {f"{title}Alarm"}
        if f"{title}Filter" in everything:
            reads = everything[f"{title}Filter"]["Properties"]["LogGroupName"]
            base |= {f"{title}Filter"} | log_path(everything, reads)
        topics = [t for t in exported(outputs, alarm["AlarmActions"]) if t in everything]
    else:
        [rule] = [t for t, r in everything.items() if r["Type"] == "AWS::Events::Rule"
                  and title in r["Metadata"]["ScrybeWatches"]]
        trails = {t for t, r in everything.items() if r["Type"] == "AWS::CloudTrail::Trail"}
        base = {rule} | trails  # "AWS API Call via CloudTrail" events need a logging trail
        topics = [t for t in refs(everything[rule]["Properties"]["Targets"]) if t in everything]
    return [base | topic_path(everything, t) for t in topics]


@pytest.fixture
def everything(template: dict[str, Any], alarm_template: dict[str, Any],
               filter_template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every resource of the environment's home stacks."""
    return resources(template, alarm_template, filter_template)


@pytest.fixture
def outputs(template: dict[str, Any], alarm_template: dict[str, Any]) -> dict[str, Any]:
    """The outputs the home stacks import from each other."""
    return {**template.get("Outputs", {}), **alarm_template.get("Outputs", {})}


@pytest.mark.parametrize("threat", THREATS, ids=[t.name for t in THREATS])
def test_every_threat_has_a_channel_it_cannot_reach(everything: dict[str, dict[str, Any]], outputs: dict[str, Any],
                                                    threat: Threat) -> None:
    if threat.dr_only and "AuditLogReplicationRole" not in everything:
        return
    hit = tampered(threat, everything)
    assert hit or not threat.tampered, f"{threat.name}: names no resource of this environment"
    working = []
    for detection in threat.detections:
        if detection.startswith("prevented:"):
            path, _, name = detection.removeprefix("prevented:").partition("::")
            assert f"def {name.split('[')[0]}(" in (ROOT / path).read_text(), detection
            working.append(detection)
            continue
        title = detection.partition(":")[2]
        if f"{title}Alarm" not in everything:
            continue  # e.g. no emergency role in dev
        working += [detection for path in channels(everything, detection, outputs) if not path & hit]
    assert working, f"{threat.name}: every detection passes through {sorted(hit)}"


def test_every_resource_is_covered_by_a_threat(everything: dict[str, dict[str, Any]]) -> None:
    specific = set().union(*(tampered(t, everything) for t in THREATS if t.tampered != ("*",)))
    assert set(everything) - specific == set()


def test_watched_events_and_health_alarms_all_appear_in_the_table(everything: dict[str, dict[str, Any]]) -> None:
    named = {d.partition(":")[2] for t in THREATS for d in t.detections}
    alarms = {t.removesuffix("Alarm") for t, r in everything.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert len(alarms) >= 20
    # DrAuditBucketTampered: the DR row's proof (tests/test_disaster_recovery.py) sends its events.
    unexplained = alarms - named - {"KmsKeyDisabledOrDeletionScheduledCis47", "CloudTrailConfigurationChangedCis45",
                                    "PhiKeyAccessDeniedBurst", "PhiKeyRotationDisabled", "EmergencyRoleUsed",
                                    "DrAuditBucketTampered"}
    assert not unexplained


def test_stack_policies_cover_every_control_resource(template: dict[str, Any], alarm_template: dict[str, Any],
                                                    filter_template: dict[str, Any],
                                                    replica_rendered: dict[tuple[str, str], str]) -> None:
    """No stack update may replace or delete any resource of any stack; aliases not even modify."""
    from scrybe_kms.derived.stack_policy import stack_policy

    for t in (template, alarm_template, filter_template, *(json.loads(r) for r in replica_rendered.values())):
        policy = stack_policy(t)["Statement"]
        denied = {r.removeprefix("LogicalResourceId/") for s in policy if s["Effect"] == "Deny"
                  for r in s["Resource"]}
        assert denied == set(t["Resources"])
        [replace] = [s for s in policy if s["Effect"] == "Deny" and s["Action"] == ["Update:Replace", "Update:Delete"]]
        assert set(t["Resources"]) - {r.removeprefix("LogicalResourceId/") for r in replace["Resource"]} == {
            k for k, v in t["Resources"].items() if v["Type"] == "AWS::KMS::Alias"}


def test_stack_deletion_keeps_the_evidence_and_its_protections(template: dict[str, Any]) -> None:
    """Retiring an environment keeps the keys, aliases, buckets, their policies and the log group."""
    kept = {k for k, v in template["Resources"].items() if v.get("DeletionPolicy") == "Retain"}
    types = {"AWS::KMS::Key", "AWS::KMS::Alias", "AWS::S3::Bucket", "AWS::S3::BucketPolicy", "AWS::Logs::LogGroup"}
    assert kept == {k for k, v in template["Resources"].items() if v["Type"] in types}


def test_readme_threat_table_matches() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Threats, and what answers each")[1]
    table = section[section.index("| Threat |"):].split("\n\n")[0]
    rows = [line for line in table.splitlines()[2:]]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [t.name for t in THREATS]
