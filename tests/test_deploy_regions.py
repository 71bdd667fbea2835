"""The deploy command across regions (issue 12): the order of the stacks, the sessions each uses, the
parameters each gets, and the key stack's second update that switches replication on.

``deploy_stack`` (one stack's plan, refusals and execution, tested call by call in
``tests/test_deploy_run.py``) and the reads are replaced by a small in-memory account here, so what is
tested is only the orchestration; the emulator deploys the real stacks in two regions.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import pytest

from scrybe_kms.deploy import DeployError, DeployOptions, env_config, run
from scrybe_kms.deploy.stack import Stack
from tests.helpers import STACKS

PRIMARY = "arn:aws:kms:us-west-2:123456789012:key/mrk-0123456789abcdef0123456789abcdef"
KEY, ALARMS, FILTERS = "scrybe-kms-production", "scrybe-kms-production-alarms", "scrybe-kms-production-filters"
REPLICA = "scrybe-kms-production-replica-us-east-1"


@dataclass(frozen=True)
class Session:
    region: str
    cloudformation: str
    account: str = "123456789012"
    endpoint: str | None = None


@dataclass
class Account:
    """Stacks by (region, name); what ``deploy_stack`` was asked to do, in order."""

    stacks: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    deployed: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)
    out: io.StringIO = field(default_factory=io.StringIO)

    def session(self, opts: DeployOptions, cfg: Any) -> Session:
        region = opts.region or cfg.aws_region
        self.opened.append(region)
        return Session(region, region)

    def read(self, cf: str, name: str, *_: Any) -> Stack:
        if (cf, name) not in self.stacks:
            return Stack(name)
        outputs = [{"OutputKey": k, "OutputValue": v} for k, v in self.stacks[(cf, name)].items()]
        return Stack(name, "UPDATE_COMPLETE", {"Outputs": outputs})

    def deploy_stack(self, aws: Session, cfg: Any, opts: DeployOptions, target: Any, say: Any, journal: Any) -> str:
        self.deployed.append((target.name, aws.region, dict(target.parameters)))
        if not opts.plan_only:
            self.stacks[(aws.region, target.name)] = {"KmsKeyArn": PRIMARY} if target.key_stack else {}
        return "plan" if opts.plan_only else "execute"


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Account:
    found = Account()
    monkeypatch.setattr(run, "deploy_stack", found.deploy_stack)
    monkeypatch.setattr(run, "read_stack", found.read)
    monkeypatch.setattr(run, "missing_exports", lambda cf, template: [])
    monkeypatch.setattr(run, "_check_rules", lambda targets, aws: None)
    return found


def deploy(account: Account, **options: Any) -> int:
    return run.deploy(DeployOptions("production", stacks_dir=STACKS, **options), account.out, account.session)


def test_a_new_environment_deploys_home_then_dr_then_switches_replication_on(account: Account) -> None:
    assert deploy(account) == 0
    assert account.deployed == [
        (KEY, "us-west-2", {"ReplicateAuditLogsToUsEast1": "Disabled"}),  # the DR bucket does not exist yet
        (ALARMS, "us-west-2", {}),
        (FILTERS, "us-west-2", {}),
        (REPLICA, "us-east-1", {"PrimaryKeyArn": PRIMARY}),  # exports do not cross regions
        (KEY, "us-west-2", {"ReplicateAuditLogsToUsEast1": "Enabled"}),
    ]
    assert "switching audit-log replication on in scrybe-kms-production (ReplicateAuditLogsToUsEast1)" in \
        account.out.getvalue()
    assert account.opened == ["us-west-2", "us-east-1"]


def test_a_rerun_keeps_replication_on_and_updates_once_per_stack(account: Account) -> None:
    deploy(account)
    account.deployed.clear()
    assert deploy(account) == 0
    assert [(name, params) for name, _, params in account.deployed] == [
        (KEY, {"ReplicateAuditLogsToUsEast1": "Enabled"}), (ALARMS, {}), (FILTERS, {}),
        (REPLICA, {"PrimaryKeyArn": PRIMARY})]


def test_plan_of_a_new_environment_defers_the_dr_stack(account: Account) -> None:
    assert deploy(account, plan_only=True) == 0
    assert [name for name, _, _ in account.deployed] == [KEY, ALARMS, FILTERS]
    assert f"{REPLICA} will be planned after {KEY} is deployed: its PrimaryKeyArn is {KEY}'s KmsKeyArn output" in \
        account.out.getvalue()


def test_stack_home_leaves_the_dr_regions_alone(account: Account) -> None:
    """While a DR region is unavailable the home region still deploys, replication as it was."""
    assert deploy(account, stack="home") == 0
    assert [(name, region) for name, region, _ in account.deployed] == [
        (KEY, "us-west-2"), (ALARMS, "us-west-2"), (FILTERS, "us-west-2")]


def test_stack_replicas_deploys_only_the_dr_stacks(account: Account) -> None:
    account.stacks[("us-west-2", KEY)] = {"KmsKeyArn": PRIMARY}
    assert deploy(account, stack="replicas") == 0
    assert account.deployed == [(REPLICA, "us-east-1", {"PrimaryKeyArn": PRIMARY})]


def test_deploy_is_run_from_the_home_region(account: Account) -> None:
    with pytest.raises(DeployError, match="deploy runs in the home region us-west-2 and deploys the us-east-1 stack "
                                          "itself: pass --region us-west-2"):
        deploy(account, region="us-east-1")
    assert account.deployed == [] and account.opened == []


def test_env_config_prints_a_dr_regions_lines(account: Account) -> None:
    lines = "AWS_KMS_KEY_ID=mrk-1\nAWS_KMS_KEY_ARN=arn:aws:kms:us-east-1:123456789012:key/mrk-1\n" \
            "AWS_KMS_REGION=us-east-1\n"
    account.stacks[("us-east-1", REPLICA)] = {"EnvironmentConfig": lines}
    opts = DeployOptions("production", stacks_dir=STACKS, region="us-east-1")
    assert env_config(opts, account.out, account.session) == 0
    assert account.out.getvalue() == lines


def test_stack_replicas_needs_dr_regions() -> None:
    from tests.helpers import SINGLE_REGION_STACKS

    with pytest.raises(DeployError, match="--stack replicas: the production configuration names no "
                                          "disaster_recovery_regions"):
        run.deploy(DeployOptions("production", stacks_dir=SINGLE_REGION_STACKS, stack="replicas"), io.StringIO())


def test_stack_home_keeps_replication_as_deployed_without_calling_the_dr_region(account: Account) -> None:
    deploy(account)
    account.deployed.clear()
    account.opened.clear()
    original = account.read

    def with_parameters(cf: str, name: str, *rest: Any) -> Stack:
        found = original(cf, name, *rest)
        if name == KEY:
            return Stack(name, found.status, {**found.description, "Parameters": [
                {"ParameterKey": "ReplicateAuditLogsToUsEast1", "ParameterValue": "Enabled"}]})
        return found

    run.read_stack = with_parameters  # type: ignore[assignment]  # undone by the fixture's monkeypatch
    assert deploy(account, stack="home") == 0
    assert account.deployed[0] == (KEY, "us-west-2", {"ReplicateAuditLogsToUsEast1": "Enabled"})
    assert account.opened == ["us-west-2"]


def test_stack_replicas_says_when_replication_is_still_off(account: Account) -> None:
    account.stacks[("us-west-2", KEY)] = {"KmsKeyArn": PRIMARY}
    assert deploy(account, stack="replicas") == 0
    assert account.out.getvalue().rstrip().endswith(
        "audit-log replication is not on yet (ReplicateAuditLogsToUsEast1): run `scrybe-kms deploy production "
        "--stack keys` to switch it on")


@pytest.mark.parametrize(("status", "ready"), [("CREATE_COMPLETE", True), ("UPDATE_ROLLBACK_COMPLETE", True),
                                               ("ROLLBACK_COMPLETE", False), ("CREATE_FAILED", False),
                                               ("DELETE_FAILED", False), ("UPDATE_IN_PROGRESS", False)])
def test_only_a_settled_dr_stack_switches_replication_on(account: Account, status: str, ready: bool) -> None:
    account.read = lambda cf, name, *_: Stack(name, status) if name == REPLICA else Stack(name)  # type: ignore
    regions = run.Regions(Session("us-west-2", "us-west-2"), DeployOptions("production", stacks_dir=STACKS),
                          run.load_stack(STACKS / "production.py"), account.session)
    run.read_stack = account.read  # type: ignore[assignment]  # undone by the fixture's monkeypatch
    assert regions.ready() == ({"us-east-1"} if ready else set())
