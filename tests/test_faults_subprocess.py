"""The deploy command as a user runs it, against a small local AWS stand-in (tools/fault_proxy.py)
that answers like CloudFormation, hangs, or is a plain web server: Ctrl-C, dead and wrong
endpoints. Each case ends in one line on stderr, never a traceback (issue 13, findings 3, 7, 8)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import OUT, ROOT

sys.path.insert(0, str(ROOT / "tools"))

from fault_proxy import FaultProxy, Scenario
from localstack import client_environment

ACCOUNT, REGION = "123456789012", "us-west-2"
OUTPUTS = {"KmsKeyId": "k-1", "EnvironmentConfig": "AWS_KMS_KEY_ID=k-1\nAWS_KMS_REGION=us-west-2\n"}


def environment(endpoint: str, home: Path) -> dict[str, str]:
    home.mkdir(exist_ok=True)
    return {**client_environment(endpoint, ACCOUNT, REGION, home), "PYTHONPATH": str(ROOT)}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "scrybe_kms", "deploy", "production", "--stack", "keys", *args]


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(command(*args), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


def wait_for(seen: list[str], action: str, after: str = "", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tail = seen[seen.index(after) + 1:] if after in seen else ([] if after else seen)
        if action in tail:
            return
        time.sleep(0.05)
    pytest.fail(f"{action} never came; seen {seen}")


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[tuple[FaultProxy, dict[str, str]]]:
    scenario = Scenario(template=(OUT / "production.json").read_text(), outputs=OUTPUTS)
    with FaultProxy(scenario) as proxy:
        yield proxy, environment(proxy.endpoint, tmp_path / "aws")


def interrupt(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    return process.returncode, out, err


def test_ctrl_c_while_the_change_set_is_made_deletes_it_in_one_line(
        stand_in: tuple[FaultProxy, dict[str, str]]) -> None:
    proxy, env = stand_in
    proxy.scenario.change_set_pending = True
    process = start(env)
    wait_for(proxy.scenario.seen, "DescribeChangeSet")
    code, _, err = interrupt(process)
    assert code == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("scrybe-kms: interrupted: scrybe-kms-production is UPDATE_COMPLETE; its unexecuted "
                          "change set scrybe-kms-"), err
    assert "was deleted" in err
    assert "DeleteChangeSet" in proxy.scenario.seen and "ExecuteChangeSet" not in proxy.scenario.seen


def test_ctrl_c_while_the_stack_updates_says_what_was_skipped(
        stand_in: tuple[FaultProxy, dict[str, str]], tmp_path: Path) -> None:
    proxy, env = stand_in
    env_file = tmp_path / "app.env"
    env_file.write_text("DB=x\n")
    process = start(env, "--env-file", str(env_file))
    wait_for(proxy.scenario.seen, "DescribeStackEvents", after="ExecuteChangeSet")
    code, _, err = interrupt(process)
    assert code == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.strip() == (
        "scrybe-kms: interrupted: scrybe-kms-production is UPDATE_IN_PROGRESS (CloudFormation carries on without "
        f"this command); not done: termination protection, the .env lines in {env_file}; run `scrybe-kms deploy "
        "production` again to finish")
    assert "DeleteChangeSet" not in proxy.scenario.seen  # it runs: nothing to delete
    assert env_file.read_text() == "DB=x\n"


def test_a_rerun_after_ctrl_c_follows_the_stack_and_finishes(
        stand_in: tuple[FaultProxy, dict[str, str]], tmp_path: Path) -> None:
    """The run after the interrupted one: the stack is still UPDATE_IN_PROGRESS; it is followed to
    the end, a new change set is made (the stand-in always reports one change) and run, and the
    skipped .env lines are written."""
    proxy, env = stand_in
    proxy.scenario.status, proxy.scenario.stuck = "UPDATE_IN_PROGRESS", False
    env_file = tmp_path / "app.env"
    result = run(env, "--env-file", str(env_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("scrybe-kms-production is UPDATE_IN_PROGRESS (another deploy, or one that was "
                                    "interrupted): following it to the end first")
    assert "AWS_KMS_KEY_ID=k-1" in env_file.read_text()


@pytest.mark.parametrize(("fault", "args", "message"), [
    ("hang", ["--timeout", "1"], "AWS did not answer in time while trying to read the caller identity"),
    ("plain", [], "could not read the caller identity: the endpoint's answer is not what AWS sends"),
    ("", ["--endpoint-url", "notaurl"], "--endpoint-url 'notaurl' is not an endpoint URL"),
])
def test_dead_or_wrong_endpoints_fail_in_seconds_with_one_line(tmp_path: Path, fault: str, args: list[str],
                                                               message: str) -> None:
    with FaultProxy(fault=fault) as proxy:
        started = time.monotonic()
        result = run(environment(proxy.endpoint, tmp_path / "aws"), *args)
        took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert took < 20, took


def test_the_default_timeout_fails_a_hung_endpoint_in_seconds_not_minutes() -> None:
    from scrybe_kms.deploy.options import DEFAULT_TIMEOUT, DeployOptions
    from scrybe_kms.deploy.session import ATTEMPTS, client_config

    config = client_config(DeployOptions("production").timeout)
    assert config.connect_timeout == config.read_timeout == DEFAULT_TIMEOUT == 10
    assert config.retries == {"mode": "standard", "total_max_attempts": ATTEMPTS}
    assert DEFAULT_TIMEOUT * ATTEMPTS <= 30  # botocore's defaults: 60 s, several times over


def test_the_stand_in_answers_like_cloudformation(tmp_path: Path) -> None:
    """The stand-in itself, read with boto3: what the tests above rely on it saying."""
    import boto3

    with FaultProxy(Scenario(outputs=OUTPUTS)) as proxy:
        cf = boto3.client("cloudformation", region_name=REGION, endpoint_url=proxy.endpoint,
                          aws_access_key_id=ACCOUNT, aws_secret_access_key="t")
        stack = cf.describe_stacks(StackName="scrybe-kms-production")["Stacks"][0]
        assert stack["StackStatus"] == "UPDATE_COMPLETE" and stack["Outputs"][0]["OutputKey"] == "KmsKeyId"
        assert dict(cf.get_template(StackName="x")["TemplateBody"]) == {}
        with FaultProxy(throttle={"DescribeStacks": 1}) as throttled:
            slow = boto3.client("cloudformation", region_name=REGION, endpoint_url=throttled.endpoint,
                                aws_access_key_id=ACCOUNT, aws_secret_access_key="t",
                                config=__import__("botocore.config").config.Config(retries={"total_max_attempts": 1}))
            with pytest.raises(Exception, match="Throttling"):
                slow.describe_stacks(StackName="x")
    assert os.environ.get("AWS_ENDPOINT_URL") != proxy.endpoint  # nothing leaked into this process
