"""Disaster recovery (issue 12): the multi-Region PHI key and its replicas, audit-log replication, the
DR regions' alarms, the deploy order across regions.

Each security property has its own test on freshly rendered templates; samples of CloudTrail
records in the DR region show that the home region's filters and rules see what happens there.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from scrybe_kms.config import ConfigError, EnvironmentConfig, naming
from scrybe_kms.config.validators import _regions
from scrybe_kms.derived.replica_access import evaluate_replica
from scrybe_kms.template import (
    MAX_TEMPLATE_BODY,
    build_replica_template,
    render,
    render_alarms,
    render_filters,
    render_replica,
)
from scrybe_kms.template.replica_stack import forwarded_event_pattern
from scrybe_kms.template.replication import replication_parameters
from tests.helpers import config, resources_of_type, statements
from tests.support.event_pattern import as_eventbridge_event
from tests.support.event_pattern import matches as event_matches
from tests.support.events import KEY_ARN, alias_event, api_event, direct_grant_event, kms_event
from tests.support.filter_pattern import matches as filter_matches
from tests.test_access import ADMIN, APP, CONFIG, CRYPTO, GRANT, GRANT_SERVICES, NONE
from tests.test_filter_patterns import rendered_patterns, resolve_sub

DR = "us-east-1"
STACK = "scrybe-kms-production-replica-us-east-1"
REPLICATION_ROLE = "arn:aws:iam::123456789012:role/scrybe-phi-audit-replication-production"
COPIES = "scrybe-phi-audit-logs-${AWS::AccountId}-production-us-east-1"


@pytest.fixture(scope="module")
def prod(configs: dict[str, EnvironmentConfig]) -> EnvironmentConfig:
    return configs["production"]


@pytest.fixture(scope="module")
def home(templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return templates["production"]


@pytest.fixture(scope="module")
def replica(replica_rendered: dict[tuple[str, str], str]) -> dict[str, Any]:
    return dict(json.loads(replica_rendered[("production", DR)]))


def resource(template: dict[str, Any], title: str) -> dict[str, Any]:
    return dict(template["Resources"][title])


# -- configuration ------------------------------------------------------------------------------

def test_only_production_has_dr_regions(configs: dict[str, EnvironmentConfig]) -> None:
    assert {env: cfg.disaster_recovery_regions for env, cfg in configs.items()} == {
        "dev": (), "staging": (), "production": (DR,)}


@pytest.mark.parametrize(("regions", "message"), [
    (["us-west-2"], "'disaster_recovery_regions[0]' must differ from aws_region"),
    (["cn-north-1"], "'disaster_recovery_regions[0]' must be in partition 'aws'"),
    (["eu-west-1", "eu-west-1"], "'disaster_recovery_regions[1]' duplicates an earlier entry (got 'eu-west-1')"),
    (["mars-1"], "'disaster_recovery_regions[0]' must be an AWS region"),
])
def test_bad_dr_regions_are_refused_naming_field_and_value(regions: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config(disaster_recovery_regions=regions)
    [problem] = raised.value.problems
    assert problem.startswith(message) and repr(regions[-1]) in problem


def test_dr_bucket_and_role_names_fit_every_region() -> None:
    """S3 bucket names are at most 63 characters, IAM role names 64: even for the longest region."""
    longest = max(_regions(), key=len)
    for name in (naming.dr_audit_bucket_name_sub("production", longest),
                 naming.dr_access_log_bucket_name_sub("production", longest)):
        assert len(name.replace("${AWS::AccountId}", "123456789012")) <= 63, name
    assert len(naming.forwarding_role_name("production", longest)) <= 64


def test_the_builder_refuses_a_region_that_is_not_configured(prod: EnvironmentConfig) -> None:
    with pytest.raises(ConfigError, match=r"'region' must be one of the production configuration's "
                                          r"disaster_recovery_regions \(us-east-1\) \(got 'eu-west-1'\)"):
        build_replica_template(prod, "eu-west-1")


# -- the multi-Region key and its replica ------------------------------------------------------------

def test_the_phi_key_is_multi_region_exactly_with_dr(templates: dict[str, dict[str, Any]],
                                                      configs: dict[str, EnvironmentConfig]) -> None:
    for env, template in templates.items():
        assert resource(template, "PhiKey")["Properties"]["MultiRegion"] is configs[env].multi_region
        # The audit-path key stays regional: it protects the home region's log group only.
        assert resource(template, "AuditKey")["Properties"]["MultiRegion"] is False


def test_admins_may_replicate_only_into_the_dr_regions(home: dict[str, Any], prod: EnvironmentConfig) -> None:
    replicate = statements(resource(home, "PhiKey")["Properties"]["KeyPolicy"])[
        "KeyAdministratorsReplicateOnlyToDrRegions"]
    assert replicate["Action"] == ["kms:ReplicateKey"]
    assert replicate["Condition"] == {"StringEquals": {"kms:ReplicaRegion": [DR]}}
    assert replicate["Principal"] == {"AWS": list(prod.admin_role_arns)}
    # Nobody else gets ReplicateKey or UpdatePrimaryRegion (break-glass has kms:*, MFA-gated).
    for sid, statement in statements(resource(home, "PhiKey")["Properties"]["KeyPolicy"]).items():
        if sid not in ("KeyAdministratorsReplicateOnlyToDrRegions", "EmergencyAccessOnlyWithMfa"):
            assert not {"kms:ReplicateKey", "kms:UpdatePrimaryRegion"} & set(statement["Action"]), sid


def test_replica_key_is_retained_and_replicates_the_parameter(replica: dict[str, Any], prod: EnvironmentConfig) -> None:
    key = resource(replica, "PhiKeyReplica")
    assert key["Type"] == "AWS::KMS::ReplicaKey"
    assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("Retain", "Retain")
    props = key["Properties"]
    assert props["PrimaryKeyArn"] == {"Ref": "PrimaryKeyArn"}
    assert props["PendingWindowInDays"] == prod.deletion_window_days and props["Enabled"] is True
    # Rotation is the primary's (KMS copies it to replicas); the property does not exist here.
    assert "EnableKeyRotation" not in props and "MultiRegion" not in props
    parameter = replica["Parameters"]["PrimaryKeyArn"]
    assert parameter["AllowedPattern"] == "^arn:aws:kms:us-west-2:123456789012:key/mrk-[0-9a-f]{32}$"
    assert replica["Rules"]["DeployOnlyToConfiguredRegion"]["Assertions"][0]["Assert"] == {
        "Fn::Equals": [{"Ref": "AWS::Region"}, DR]}


def test_replica_policy_has_the_primarys_shape(home: dict[str, Any], replica: dict[str, Any]) -> None:
    """Same principals, actions and conditions, except what concerns only the home region (the trail,
    CloudTrail's log readers, ReplicateKey, decrypting the source for replication) and what concerns
    only the copies (auditors and the replication role on this region's bucket)."""
    primary = statements(resource(home, "PhiKey")["Properties"]["KeyPolicy"])
    copy = statements(resource(replica, "PhiKeyReplica")["Properties"]["KeyPolicy"])
    home_only = {"CloudTrailEncryptLogFiles", "CloudTrailDescribeKey", "AuditorsDecryptCloudTrailLogsOnlyThroughS3",
                 "KeyAdministratorsReplicateOnlyToDrRegions", "ReplicationRoleDecryptsAuditLogsOnlyThroughS3"}
    copies_only = {"AuditorsDecryptAuditLogCopiesOnlyThroughS3", "ReplicationRoleEncryptsAuditLogCopiesOnlyThroughS3"}
    assert set(primary) - home_only == set(copy) - copies_only
    for sid in set(primary) - home_only:
        assert copy[sid] == primary[sid], sid  # ViaService is Fn::Sub ${AWS::Region}: this region's endpoints


def test_replica_aliases_are_the_primarys_names(home: dict[str, Any], replica: dict[str, Any],
                                                prod: EnvironmentConfig) -> None:
    aliases = resources_of_type(replica, "AWS::KMS::Alias")
    assert sorted(a["Properties"]["AliasName"] for a in aliases.values()) == sorted(prod.aliases)
    for alias in aliases.values():
        assert alias["Properties"]["TargetKeyId"] == {"Ref": "PhiKeyReplica"}
        assert (alias["DeletionPolicy"], alias["UpdateReplacePolicy"]) == ("Retain", "Retain")


EXPECTED_REPLICA = {
    "application role": APP,
    "admin role *": ADMIN,
    "emergency role with MFA": frozenset(CONFIG | CRYPTO | ADMIN | GRANT | {"kms:ReplicateKey"}),
    "emergency role without MFA": NONE,
    "* through grant service": APP | GRANT,
    "* through other service": APP,
    "* grant not for an AWS resource": APP,
    "* directly": NONE,
    "auditor, a copy through S3": frozenset({"kms:Decrypt"}),
    "replication role, a copy through S3": frozenset({"kms:Encrypt"}),
    "* another bucket, or directly": NONE,
    "AWS Config (service-linked role)": CONFIG,
    "IAM Access Analyzer (service-linked role)": frozenset({"kms:DescribeKey", "kms:GetKeyPolicy"}),
    "other role, same account (IAM kms:*)": NONE,
    "role in another account (IAM kms:*)": NONE,
    "anonymous": NONE,
}


def replica_family(label: str) -> str:
    if label.startswith("admin role "):
        return "admin role *"
    if ", an object of " in label:
        return "replication role, a copy through S3" if label.startswith("replication role") \
            else "auditor, a copy through S3"
    if "another bucket's object" in label or "directly, with that object's context" in label:
        return "* another bucket, or directly"
    for suffix in ("grant not for an AWS resource", "directly"):
        if label.endswith(suffix):
            return "* " + suffix
    if " through " in label:
        return "* through grant service" if label.rsplit(" through ", 1)[1] in GRANT_SERVICES \
            else "* through other service"
    return label


def test_every_cell_of_the_replica_matrix(home: dict[str, Any], replica: dict[str, Any],
                                          prod: EnvironmentConfig) -> None:
    """The replica's own policy, evaluated in its region: the primary's roles through this region's
    endpoints; auditors decrypt and the replication role encrypts only this region's copies."""
    grid = evaluate_replica(replica, prod, DR, home)
    assert any(label.startswith("replication role") for label in grid), "the role comes from the home template"
    everything = frozenset().union(*EXPECTED_REPLICA.values())
    wrong = [f"{label} / {action}" for label, row in grid.items() for action, allowed in row.items()
             if action in everything and allowed != (action in EXPECTED_REPLICA[replica_family(label)])]
    assert not wrong, "\n".join(wrong)


def test_a_replica_ignores_viaservice_of_the_home_region(replica: dict[str, Any], prod: EnvironmentConfig,
                                                         home: dict[str, Any]) -> None:
    """The rows through services carry this region's endpoints; the home region's would be denied."""
    from scrybe_kms.derived.evaluator import Request, evaluate, prepare
    from scrybe_kms.derived.scenarios import resolve, values

    policy = prepare(resolve(resource(replica, "PhiKeyReplica")["Properties"]["KeyPolicy"],
                             values(prod, "PhiKeyReplica", DR)))
    deployer = prod.service_key_users[0].role_arn
    for region, allowed in ((DR, True), (prod.aws_region, False)):
        request = Request(principal_arn=deployer, service=None, action="kms:Decrypt", resource="*", context={
            "aws:PrincipalArn": deployer, "kms:CallerAccount": "123456789012",
            "kms:ViaService": f"rds.{region}.amazonaws.com"})
        assert evaluate(policy, request, iam_allows=True).allowed is allowed, region


# -- audit-log replication ---------------------------------------------------------------------------

def test_replication_rules(home: dict[str, Any]) -> None:
    bucket = resource(home, "AuditLogBucket")
    config_if = bucket["Properties"]["ReplicationConfiguration"]
    condition, replication, otherwise = config_if["Fn::If"]
    assert condition == "ReplicatingAuditLogsToUsEast1" and otherwise == {"Ref": "AWS::NoValue"}
    assert home["Conditions"][condition] == {"Fn::Equals": [{"Ref": "ReplicateAuditLogsToUsEast1"}, "Enabled"]}
    assert home["Parameters"]["ReplicateAuditLogsToUsEast1"]["Default"] == "Disabled"
    assert replication["Role"] == REPLICATION_ROLE  # by name: the bucket can be adopted without the role
    [rule] = replication["Rules"]
    assert rule["Status"] == "Enabled" and rule["Filter"] == {"Prefix": ""}
    # Delete markers stay home: one added here must not hide the DR copy (D48).
    assert rule["DeleteMarkerReplication"] == {"Status": "Disabled"}
    assert rule["SourceSelectionCriteria"] == {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    destination = rule["Destination"]
    assert destination["Bucket"] == {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{COPIES}"}
    assert destination["EncryptionConfiguration"] == {"ReplicaKmsKeyID": {"Fn::Sub": [
        "arn:${AWS::Partition}:kms:us-east-1:${AWS::AccountId}:key/${PhiKey}", {"PhiKey": {"Ref": "PhiKey"}}]}}
    assert destination["Metrics"] == {"Status": "Enabled"}
    assert "DependsOn" in bucket and "AuditLogReplicationRolePolicy" in bucket["DependsOn"]


def test_two_dr_regions_each_have_their_own_switch() -> None:
    template = json.loads(render(config(disaster_recovery_regions=["us-east-1", "eu-west-1"])))
    condition, replication, _ = template["Resources"]["AuditLogBucket"]["Properties"]["ReplicationConfiguration"][
        "Fn::If"]
    assert condition == "ReplicatingAuditLogs"
    assert template["Conditions"]["ReplicatingAuditLogs"] == {"Fn::Or": [
        {"Condition": "ReplicatingAuditLogsToEuWest1"}, {"Condition": "ReplicatingAuditLogsToUsEast1"}]}
    rules = [r["Fn::If"] for r in replication["Rules"]]
    assert [(r[0], r[1]["Priority"], r[2]) for r in rules] == [
        ("ReplicatingAuditLogsToEuWest1", 0, {"Ref": "AWS::NoValue"}),
        ("ReplicatingAuditLogsToUsEast1", 1, {"Ref": "AWS::NoValue"})]


def test_replication_role_is_least_privilege(home: dict[str, Any]) -> None:
    role = resource(home, "AuditLogReplicationRole")["Properties"]
    assert role["RoleName"] == "scrybe-phi-audit-replication-production"
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "s3.amazonaws.com"} and trust["Action"] == ["sts:AssumeRole"]
    assert "Policies" not in role and "ManagedPolicyArns" not in role
    policy = resource(home, "AuditLogReplicationRolePolicy")["Properties"]
    assert policy["Roles"] == [{"Ref": "AuditLogReplicationRole"}]
    found = statements(policy["PolicyDocument"])
    source = "arn:${AWS::Partition}:s3:::scrybe-phi-audit-logs-${AWS::AccountId}-production"
    assert found["ReadReplicationConfiguration"]["Action"] == ["s3:GetReplicationConfiguration", "s3:ListBucket"]
    assert found["ReadReplicationConfiguration"]["Resource"] == [{"Fn::Sub": source}]
    # Object Lock (compliance in production): the copies get the same retention, so read it too.
    assert found["ReadAuditLogVersions"]["Action"] == [
        "s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging",
        "s3:GetObjectRetention", "s3:GetObjectLegalHold"]
    assert found["ReadAuditLogVersions"]["Resource"] == [{"Fn::Sub": source + "/*"}]
    assert found["WriteCopiesToDrBuckets"]["Action"] == ["s3:ReplicateObject", "s3:ReplicateDelete",
                                                         "s3:ReplicateTags"]
    assert found["WriteCopiesToDrBuckets"]["Resource"] == [{"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{COPIES}/*"}]
    decrypt = found["DecryptSourceOnlyThroughS3"]
    assert decrypt["Action"] == ["kms:Decrypt"] and decrypt["Resource"] == [{"Fn::GetAtt": ["PhiKey", "Arn"]}]
    assert decrypt["Condition"]["StringLike"] == {
        "kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"},
        "kms:EncryptionContext:aws:s3:arn": {"Fn::Sub": source + "/*"}}
    encrypt = found["EncryptCopiesInUsEast1"]
    assert encrypt["Action"] == ["kms:Encrypt"]
    assert encrypt["Condition"]["StringLike"] == {
        "kms:ViaService": "s3.us-east-1.amazonaws.com",
        "kms:EncryptionContext:aws:s3:arn": {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{COPIES}/*"}}
    assert set(found) == {"ReadReplicationConfiguration", "ReadAuditLogVersions", "WriteCopiesToDrBuckets",
                          "DecryptSourceOnlyThroughS3", "EncryptCopiesInUsEast1"}


def test_both_keys_name_the_replication_role_by_its_arn(home: dict[str, Any], replica: dict[str, Any]) -> None:
    """By ``aws:PrincipalArn``, not as the principal: a key policy stores a named principal as its
    unique ID, and the replicas' policies, in other regions, are not re-applied when the role is
    recreated (a retired key stack adopted again); it also deploys before the role exists (D48)."""
    for template, title, sid, action, bucket in (
            (home, "PhiKey", "ReplicationRoleDecryptsAuditLogsOnlyThroughS3", "kms:Decrypt",
             "scrybe-phi-audit-logs-${AWS::AccountId}-production"),
            (replica, "PhiKeyReplica", "ReplicationRoleEncryptsAuditLogCopiesOnlyThroughS3", "kms:Encrypt", COPIES)):
        statement = statements(resource(template, title)["Properties"]["KeyPolicy"])[sid]
        assert statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
        assert statement["Action"] == [action]
        assert statement["Condition"] == {
            "ArnEquals": {"aws:PrincipalArn": REPLICATION_ROLE},
            "StringEquals": {"kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"},
                             "kms:CallerAccount": {"Ref": "AWS::AccountId"}},
            "StringLike": {"kms:EncryptionContext:aws:s3:arn": {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{bucket}/*"}}}


def test_dr_buckets_match_the_home_buckets(home: dict[str, Any], replica: dict[str, Any]) -> None:
    """Versioned, private, TLS-only, the same lifecycle and Object Lock; encrypted with the replica."""
    for title in ("AuditLogBucket", "AuditLogAccessLogBucket"):
        ours, theirs = resource(replica, title), resource(home, title)
        for prop in ("VersioningConfiguration", "PublicAccessBlockConfiguration", "OwnershipControls",
                     "LifecycleConfiguration", "ObjectLockEnabled", "ObjectLockConfiguration"):
            assert ours["Properties"].get(prop) == theirs["Properties"].get(prop), (title, prop)
        assert (ours["DeletionPolicy"], ours["UpdateReplacePolicy"]) == ("Retain", "Retain")
        policy = statements(resource(replica, f"{title}Policy")["Properties"]["PolicyDocument"])
        assert policy["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    copies = resource(replica, "AuditLogBucket")["Properties"]
    assert copies["BucketName"] == {"Fn::Sub": COPIES}
    [rule] = copies["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                      "KMSMasterKeyID": {"Fn::GetAtt": ["PhiKeyReplica", "Arn"]}},
                    "BucketKeyEnabled": False}
    assert copies["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {"Mode": "COMPLIANCE", "Days": 2557}
    deny = statements(resource(replica, "AuditLogBucketPolicy")["Properties"]["PolicyDocument"])[
        "DenyAuditLogVersionDeletion"]
    assert deny["Effect"] == "Deny" and deny["Action"] == ["s3:DeleteObjectVersion"]


# -- alarms: the home region sees the DR regions ----------------------------------------------------

REPLICA_ARN = KEY_ARN.replace(":us-west-2:", f":{DR}:")
DR_COPIES = "scrybe-phi-audit-logs-123456789012-production-us-east-1"
DR_ACCESS_LOGS = "scrybe-phi-access-logs-123456789012-production-us-east-1"


def in_dr(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "awsRegion": DR}


#: One CloudTrail record per kind of tampering with a DR stack's resources, as it happens there.
DR_TAMPERING: dict[str, list[dict[str, Any]]] = {
    "AWS::KMS::ReplicaKey": [in_dr(kms_event(name, REPLICA_ARN)) for name in
                             ("DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy")]
                            + [in_dr(direct_grant_event(REPLICA_ARN))],
    "AWS::KMS::Alias": [in_dr(alias_event("UpdateAlias", "alias/scrybe-phi-master-key-production", REPLICA_ARN))],
    "AWS::S3::Bucket": [in_dr(api_event("s3", name, {"bucketName": bucket})) for name in
                        ("PutBucketLifecycle", "PutBucketVersioning", "DeleteBucketReplication")
                        for bucket in (DR_COPIES, DR_ACCESS_LOGS)],
    "AWS::S3::BucketPolicy": [in_dr(api_event("s3", "PutBucketPolicy", {"bucketName": DR_COPIES})),
                              in_dr(api_event("s3", "DeleteBucketPolicy", {"bucketName": DR_ACCESS_LOGS}))],
    "AWS::Events::Rule": [in_dr(api_event("events", name, {"name": "scrybe-phi-production-audit-events-forward"}))
                          for name in ("DisableRule", "DeleteRule")]
                         + [in_dr(api_event("events", "RemoveTargets",
                                            {"rule": "scrybe-phi-production-audit-events-forward"}))],
    "AWS::IAM::Role": [api_event("iam", name, {"roleName": "scrybe-phi-production-events-forward-us-east-1"})
                       for name in ("PutRolePolicy", "DeleteRole", "UpdateAssumeRolePolicy")],
    "AWS::SQS::Queue": [in_dr(api_event("sqs", "PurgeQueue", {
        "queueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/scrybe-phi-audit-events-dlq-production"}))],
    "AWS::SQS::QueuePolicy": [in_dr(api_event("sqs", "SetQueueAttributes", {
        "queueUrl": "https://us-east-1.queue.amazonaws.com/123456789012/scrybe-phi-audit-events-dlq-production"}))],
    "AWS::SNS::Topic": [in_dr(api_event("sns", "DeleteTopic", {
        "topicArn": "arn:aws:sns:us-east-1:123456789012:scrybe-phi-key-watchdog-production"}))],
    "AWS::SNS::TopicPolicy": [in_dr(api_event("sns", "SetTopicAttributes", {
        "topicArn": "arn:aws:sns:us-east-1:123456789012:scrybe-phi-key-watchdog-production",
        "attributeName": "Policy"}))],
    "AWS::CloudWatch::Alarm": [in_dr(api_event("monitoring", "DeleteAlarms", {
        "alarmNames": ["scrybe-phi-production-AuditEventForwardFailed"]})),
        in_dr(api_event("monitoring", "PutMetricAlarm",
                        {"alarmName": "scrybe-phi-production-AuditEventForwardFailed"}))],
}


@pytest.fixture(scope="module")
def home_filters(filter_templates: dict[str, dict[str, Any]]) -> dict[str, str]:
    return rendered_patterns(filter_templates["production"])


def test_every_dr_resource_is_watched_from_the_home_region(replica: dict[str, Any],
                                                          home_filters: dict[str, str]) -> None:
    """The multi-Region trail delivers the DR regions' records to the home log group: for every
    resource of the DR stack, each way of tampering with it there matches a home metric filter."""
    kinds = {r["Type"] for r in replica["Resources"].values()}
    assert kinds == set(DR_TAMPERING), kinds ^ set(DR_TAMPERING)
    for kind, samples in DR_TAMPERING.items():
        for event in samples:
            hits = [title for title, pattern in home_filters.items() if filter_matches(pattern, event)]
            assert hits, (kind, event["eventName"], event.get("requestParameters"))


def test_the_replica_key_is_matched_by_its_id_in_any_region(home_filters: dict[str, str]) -> None:
    for name, title in (("DisableKey", "PhiKeyDisabled"), ("ScheduleKeyDeletion", "PhiKeyDeletionScheduled"),
                        ("PutKeyPolicy", "PhiKeyPolicyChanged"), ("DisableKeyRotation", "PhiKeyRotationDisabled")):
        for region in (DR, "eu-central-1"):  # a configured DR region, and one someone replicated into
            event = {**kms_event(name, KEY_ARN.replace(":us-west-2:", f":{region}:")), "awsRegion": region}
            assert filter_matches(home_filters[title], event), (name, region)
        other_account = KEY_ARN.replace(":123456789012:", ":210987654321:")
        assert not filter_matches(home_filters[title], kms_event(name, other_account))


def test_dr_events_reach_the_home_rules_through_the_forwarding_rule(
        replica: dict[str, Any], alarm_templates: dict[str, dict[str, Any]], prod: EnvironmentConfig) -> None:
    """EventBridge is regional: the DR rule forwards the watched KMS and S3 calls to the home bus,
    whose rules then match them (the event keeps its detail)."""
    [forward] = resources_of_type(replica, "AWS::Events::Rule").values()
    assert forward["Properties"]["EventPattern"] == forwarded_event_pattern(prod)
    [target] = forward["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::Sub": "arn:${AWS::Partition}:events:us-west-2:${AWS::AccountId}:event-bus/default"}
    assert target["RoleArn"] == {"Fn::GetAtt": ["AuditEventForwardingRole", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["AuditEventDeadLetterQueue", "Arn"]}}
    role = resource(replica, "AuditEventForwardingRole")["Properties"]
    [put] = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert put["Action"] == ["events:PutEvents"] and put["Resource"] == [target["Arn"]]
    home_rules = [resolve_sub(r["Properties"]["EventPattern"])
                  for r in resources_of_type(alarm_templates["production"], "AWS::Events::Rule").values()]
    kms_and_s3 = [e for kind, samples in DR_TAMPERING.items() if kind.split("::")[1] in ("KMS", "S3")
                  for e in samples]
    for event in kms_and_s3:
        delivered = as_eventbridge_event(event)
        assert event_matches(forward["Properties"]["EventPattern"], delivered), event["eventName"]
        assert any(event_matches(p, delivered) for p in home_rules), (event["eventName"], event["requestParameters"])
    # Decrypt and other routine calls are not forwarded.
    assert not event_matches(forward["Properties"]["EventPattern"], as_eventbridge_event(in_dr(kms_event("Decrypt"))))


def test_dr_region_reports_failed_forwards_there(replica: dict[str, Any]) -> None:
    alarms = {t: r["Properties"] for t, r in resources_of_type(replica, "AWS::CloudWatch::Alarm").items()}
    assert set(alarms) == {"AuditEventForwardFailedAlarm", "ForwardedEventsDeadLetteredAlarm"}
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": "WatchdogTopic"}] and alarm["Threshold"] == 1


def test_dr_roles_changes_are_alarmed(home_filters: dict[str, str]) -> None:
    pattern = home_filters["DrRolesChanged"]
    for role in ("scrybe-phi-audit-replication-production", "scrybe-phi-production-events-forward-eu-west-1"):
        assert filter_matches(pattern, api_event("iam", "PutRolePolicy", {"roleName": role}))
        assert not filter_matches(pattern, api_event("iam", "GetRolePolicy", {"roleName": role}, read_only=True))
    assert not filter_matches(pattern, api_event("iam", "PutRolePolicy", {"roleName": "someone-else"}))


# -- sizes, deploy order ---------------------------------------------------------------------------

def test_every_template_stays_inline_deployable_with_three_dr_regions() -> None:
    cfg = config(disaster_recovery_regions=["us-east-1", "eu-west-1", "ap-southeast-2"],
                 audit_log_reader_role_arns=["arn:aws:iam::123456789012:role/auditor"])
    texts = [render(cfg), render_filters(cfg), render_alarms(cfg),
             *(render_replica(cfg, r) for r in cfg.disaster_recovery_regions)]
    for text in texts:
        assert len(text.encode()) <= MAX_TEMPLATE_BODY - 4096


def test_replication_parameters_follow_the_dr_stacks_that_exist() -> None:
    cfg = config(disaster_recovery_regions=["us-east-1", "eu-west-1"])
    assert replication_parameters(cfg, set()) == {"ReplicateAuditLogsToEuWest1": "Disabled",
                                                  "ReplicateAuditLogsToUsEast1": "Disabled"}
    assert replication_parameters(cfg, {"eu-west-1"}) == {"ReplicateAuditLogsToEuWest1": "Enabled",
                                                          "ReplicateAuditLogsToUsEast1": "Disabled"}


def test_govcloud_dr_regions_rely_on_the_filter_channel() -> None:
    """EventBridge does not route events to GovCloud or China regions (D51)."""
    gov = config(aws_region="us-gov-west-1", disaster_recovery_regions=["us-gov-east-1"],
                 application_role_arn="arn:aws-us-gov:iam::123456789012:role/app",
                 admin_role_arns=["arn:aws-us-gov:iam::123456789012:role/admin"], emergency_access_role_arn=None)
    template = json.loads(render_replica(gov, "us-gov-east-1"))
    assert not resources_of_type(template, "AWS::Events::Rule")
    assert resources_of_type(template, "AWS::KMS::ReplicaKey")


def test_a_version_that_fails_to_replicate_is_reported(home: dict[str, Any],
                                                       alarm_templates: dict[str, dict[str, Any]]) -> None:
    """S3 does not retry it: the failure notification (which needs replication metrics, on in every
    rule) goes to the alarm topic, whose policy lets S3 publish for this bucket only (D48)."""
    notification = resource(home, "AuditLogBucket")["Properties"]["NotificationConfiguration"]
    condition, configured, otherwise = notification["Fn::If"]
    assert condition == "ReplicatingAuditLogsToUsEast1" and otherwise == {"Ref": "AWS::NoValue"}
    assert configured == {"TopicConfigurations": [{
        "Event": "s3:Replication:OperationFailedReplication",
        "Topic": {"Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:"
                             "scrybe-phi-key-alarms-production"}}]}
    alarms = alarm_templates["production"]["Resources"]
    assert alarms["AlarmTopic"]["Properties"]["TopicName"] == "scrybe-phi-key-alarms-production"
    publish = statements(alarms["AlarmTopicPolicy"]["Properties"]["PolicyDocument"])["S3ReportsFailedReplication"]
    assert publish["Principal"] == {"Service": "s3.amazonaws.com"} and publish["Action"] == ["sns:Publish"]
    assert publish["Condition"] == {
        "ArnLike": {"aws:SourceArn": [{"Fn::Sub": "arn:${AWS::Partition}:s3:::"
                                                  "scrybe-phi-audit-logs-${AWS::AccountId}-production"}]},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    for template in alarm_templates.values():  # without DR, S3 may not publish
        policy = statements(template["Resources"]["AlarmTopicPolicy"]["Properties"]["PolicyDocument"])
        assert ("S3ReportsFailedReplication" in policy) is (template is alarm_templates["production"])
