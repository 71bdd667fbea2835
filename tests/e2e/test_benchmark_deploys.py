"""The benchmark's deploy figures measure real deploys: both tools create and update a stack on
the emulator and each figure comes with the time from the stack's final event to the exit.

No timing is asserted (``tox -e bench`` prints and checks targets); this keeps that code honest.
The benchmark works in its own emulator accounts, apart from the production stack the other
end-to-end tests use.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests import benchmark
from tests.e2e.conftest import REGION

pytestmark = pytest.mark.emulator


def test_benchmark_deploys_both_tools_and_measures_from_the_final_event(emulator: Any) -> None:
    results = benchmark.deploy_runs(1, emulator.endpoint)
    assert sorted(results) == sorted(f"{kind}{tool}" for kind in ("new stack: ", "update:    ")
                                     for tool in benchmark.TOOLS)
    for label, [run] in results.items():
        assert run.lag is not None and 0 <= run.lag < run.seconds, (label, run)
        assert run.peak_mb > 20, (label, run)
    # Each tool's update really changed the stack it created, in its own account.
    accounts = {run.account for label, [run] in results.items() if label.startswith("update")}
    assert len(accounts) == 2
    for account in accounts:
        session = boto3.Session(aws_access_key_id=account, aws_secret_access_key="test", region_name=REGION)
        cf = session.client("cloudformation", endpoint_url=emulator.endpoint)
        assert cf.describe_stacks(StackName=benchmark.ALARM_STACK)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
        assert cf.describe_stacks(StackName=benchmark.STACK)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
        topic = f"arn:aws:sns:{REGION}:{account}:scrybe-phi-key-alarms-production"
        attributes = session.client("sns", endpoint_url=emulator.endpoint).get_topic_attributes(TopicArn=topic)
        assert attributes["Attributes"]["DisplayName"] == "Scrybe PHI key alarms (benchmark 0)"
