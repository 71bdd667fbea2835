"""Disaster recovery on the emulator, in two regions (issue 12): production's home stacks in us-west-2,
its DR stack in us-east-1, replication switched on, a DR region's .env lines.

Runs in an emulator account of its own (LocalStack keeps each account's state apart), with
production's stack file rewritten for that account, so it does not disturb the home-region tests.
LocalStack community has no ``AWS::KMS::ReplicaKey``: it reports the replica created "as a fallback"
(physical id ``unknown``) and creates nothing, so the aliases that name it fail and the stack rolls
back. The DR stack is therefore deployed here without its aliases, as the README's AWS CLI step 3
(with ``PrimaryKeyArn``); what needs a real replica is a strict xfail naming the gap.
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from typing import Any

import pytest

from scrybe_kms.config import load_stack
from scrybe_kms.template import render_replica
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.emulator

ACCOUNT = "345678901234"
HOME, DR = "us-west-2", "us-east-1"
STACK = "scrybe-kms-production"
REPLICA_STACK = f"{STACK}-replica-{DR}"
GAP = "LocalStack community 2026.3 has no AWS::KMS::ReplicaKey (deployed 'as a fallback', creating nothing)"


@pytest.fixture(scope="module")
def dr(emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import localstack

    where = tmp_path_factory.mktemp("dr")
    settings = runpy.run_path(str(ROOT / "stacks" / "production.py"))["SETTINGS"]
    original = load_stack(ROOT / "stacks" / "production.py").account_id
    (where / "stacks").mkdir()
    (where / "stacks" / "production.py").write_text(
        "SETTINGS = " + repr(json.loads(json.dumps(settings).replace(original, ACCOUNT))) + "\n")
    env = localstack.client_environment(emulator.endpoint, ACCOUNT, HOME, where)
    return {"env": env, "stacks": where / "stacks", "cfg": load_stack(where / "stacks" / "production.py"),
            "where": where, "endpoint": emulator.endpoint}


def client(dr: dict[str, Any], service: str, region: str) -> Any:
    import boto3

    session = boto3.Session(aws_access_key_id=ACCOUNT, aws_secret_access_key="test", region_name=region)
    return session.client(service, endpoint_url=dr["endpoint"])


def scrybe_kms(dr: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scrybe_kms", *args, "--stacks", str(dr["stacks"])], env=dr["env"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def stack_outputs(dr: dict[str, Any], region: str, stack: str) -> dict[str, str]:
    described = client(dr, "cloudformation", region).describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def test_home_stacks_first_with_replication_off(dr: dict[str, Any]) -> None:
    result = scrybe_kms(dr, "deploy", "production", "--stack", "home")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "parameters: ReplicateAuditLogsToUsEast1=Disabled" in result.stdout  # no DR bucket yet
    bucket = stack_outputs(dr, HOME, STACK)["AuditLogsBucket"]
    with pytest.raises(Exception, match="ReplicationConfigurationNotFound"):
        client(dr, "s3", HOME).get_bucket_replication(Bucket=bucket)


def test_dr_stack_in_its_region_with_the_primary_keys_arn(dr: dict[str, Any]) -> None:
    """The README's step 3, with the AWS CLI, in us-east-1; the template without the aliases that
    LocalStack cannot point at its fallback replica."""
    body = json.loads(render_replica(dr["cfg"], DR))
    aliases = [t for t, r in body["Resources"].items() if r["Type"] == "AWS::KMS::Alias"]
    assert aliases, "the DR template has the primary's aliases"
    for title in aliases:
        del body["Resources"][title]
    path = dr["where"] / "replica-without-aliases.json"
    path.write_text(json.dumps(body))
    primary = stack_outputs(dr, HOME, STACK)["KmsKeyArn"]
    result = subprocess.run(
        ["aws", "cloudformation", "deploy", "--template-file", str(path), "--stack-name", REPLICA_STACK,
         "--parameter-overrides", f"PrimaryKeyArn={primary}", "--capabilities", "CAPABILITY_NAMED_IAM",
         "--region", DR], env=dr["env"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    described = client(dr, "cloudformation", DR).describe_stacks(StackName=REPLICA_STACK)["Stacks"][0]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    assert described["Parameters"] == [{"ParameterKey": "PrimaryKeyArn", "ParameterValue": primary}]
    # Not in the home region: stacks and exports are regional.
    with pytest.raises(Exception, match="does not exist"):
        client(dr, "cloudformation", HOME).describe_stacks(StackName=REPLICA_STACK)


def test_dr_buckets_are_private_versioned_tls_only(dr: dict[str, Any]) -> None:
    s3 = client(dr, "s3", DR)
    copies = f"scrybe-phi-audit-logs-{ACCOUNT}-production-{DR}"
    assert stack_outputs(dr, DR, REPLICA_STACK)["AuditLogsBucket"] == copies
    for bucket in (copies, f"scrybe-phi-access-logs-{ACCOUNT}-production-{DR}"):
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4
        policy = {s["Sid"]: s for s in json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]}
        assert policy["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    policy = {s["Sid"]: s for s in json.loads(s3.get_bucket_policy(Bucket=copies)["Policy"])["Statement"]}
    assert policy["DenyAuditLogVersionDeletion"]["Action"] == ["s3:DeleteObjectVersion"]
    # In the DR region.
    head = s3.head_bucket(Bucket=copies)["ResponseMetadata"]["HTTPHeaders"]
    assert head["x-amz-bucket-region"] == DR


def test_dr_region_forwards_its_events_to_the_home_bus(dr: dict[str, Any]) -> None:
    events = client(dr, "events", DR)
    rule = events.describe_rule(Name="scrybe-phi-production-audit-events-forward")
    assert rule["State"] == "ENABLED"
    assert "kms.amazonaws.com" in json.loads(rule["EventPattern"])["detail"]["eventSource"]
    [target] = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == f"arn:aws:events:{HOME}:{ACCOUNT}:event-bus/default"
    assert target["RoleArn"].endswith(":role/scrybe-phi-production-events-forward-us-east-1")
    assert target["DeadLetterConfig"]["Arn"] == f"arn:aws:sqs:{DR}:{ACCOUNT}:scrybe-phi-audit-events-dlq-production"
    alarms = client(dr, "cloudwatch", DR).describe_alarms(AlarmNamePrefix="scrybe-phi-production-")["MetricAlarms"]
    assert {a["AlarmName"] for a in alarms} == {"scrybe-phi-production-AuditEventForwardFailed",
                                                "scrybe-phi-production-ForwardedEventsDeadLettered"}
    assert {a["AlarmActions"][0] for a in alarms} == {f"arn:aws:sns:{DR}:{ACCOUNT}:scrybe-phi-key-watchdog-production"}


@pytest.mark.xfail(strict=True, reason=GAP)
def test_the_replica_is_a_replica_of_the_primary_in_the_dr_region(dr: dict[str, Any]) -> None:
    primary = stack_outputs(dr, HOME, STACK)["KmsKeyArn"]
    replica = stack_outputs(dr, DR, REPLICA_STACK)["KmsKeyArn"]
    assert replica == primary.replace(f":{HOME}:", f":{DR}:")
    metadata = client(dr, "kms", DR).describe_key(KeyId=replica)["KeyMetadata"]
    assert metadata["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert metadata["MultiRegionConfiguration"]["PrimaryKey"]["Arn"] == primary


@pytest.mark.xfail(strict=True, reason="LocalStack community 2026.3's AWS::KMS::Key ignores MultiRegion "
                                       "(the key ID has no mrk- prefix)")
def test_the_primary_key_is_multi_region(dr: dict[str, Any]) -> None:
    primary = stack_outputs(dr, HOME, STACK)["KmsKeyArn"]
    assert client(dr, "kms", HOME).describe_key(KeyId=primary)["KeyMetadata"]["MultiRegion"] is True


def test_the_deploy_switches_replication_on_once_the_dr_stack_exists(dr: dict[str, Any]) -> None:
    result = scrybe_kms(dr, "deploy", "production", "--stack", "keys")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "parameters: ReplicateAuditLogsToUsEast1=Enabled" in result.stdout
    assert f"{STACK}: UPDATE_COMPLETE" in result.stdout
    described = client(dr, "cloudformation", HOME).describe_stacks(StackName=STACK)["Stacks"][0]
    assert described["Parameters"] == [{"ParameterKey": "ReplicateAuditLogsToUsEast1", "ParameterValue": "Enabled"}]


@pytest.mark.xfail(strict=True, reason="LocalStack community 2026.3's AWS::S3::Bucket drops ReplicationConfiguration, "
                                       "as it drops LifecycleConfiguration (the stack update completes; "
                                       "GetBucketReplication finds none)")
def test_home_bucket_replicates_to_the_dr_bucket(dr: dict[str, Any]) -> None:
    bucket = stack_outputs(dr, HOME, STACK)["AuditLogsBucket"]
    replication = client(dr, "s3", HOME).get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"]
    assert replication["Role"] == f"arn:aws:iam::{ACCOUNT}:role/scrybe-phi-audit-replication-production"
    [rule] = replication["Rules"]
    assert rule["Status"] == "Enabled" and rule["DeleteMarkerReplication"] == {"Status": "Disabled"}
    assert rule["Destination"]["Bucket"] == f"arn:aws:s3:::scrybe-phi-audit-logs-{ACCOUNT}-production-{DR}"
    replica_key = rule["Destination"]["EncryptionConfiguration"]["ReplicaKmsKeyID"]
    assert replica_key.startswith(f"arn:aws:kms:{DR}:{ACCOUNT}:key/")


def test_env_config_prints_the_dr_regions_lines(dr: dict[str, Any]) -> None:
    result = scrybe_kms(dr, "env-config", "production", "--region", DR)
    assert result.returncode == 0, result.stderr
    assert result.stdout == stack_outputs(dr, DR, REPLICA_STACK)["EnvironmentConfig"]
    assert result.stdout.splitlines()[-1] == f"AWS_KMS_REGION={DR}"


def test_deploy_is_refused_from_a_dr_region(dr: dict[str, Any]) -> None:
    result = scrybe_kms(dr, "deploy", "production", "--region", DR)
    assert result.returncode == 1
    assert "deploy runs in the home region us-west-2 and deploys the us-east-1 stack itself" in result.stderr


@pytest.mark.xfail(strict=True, reason=GAP + ", so the aliases that target it fail")
def test_the_deploy_command_deploys_the_full_dr_stack(dr: dict[str, Any]) -> None:
    result = scrybe_kms(dr, "deploy", "production", "--stack", "replicas")
    assert result.returncode == 0, result.stdout + result.stderr
    aliases = {a["AliasName"] for a in client(dr, "kms", DR).list_aliases()["Aliases"]}
    assert "alias/scrybe-phi-master-key-production" in aliases
