"""A LocalStack emulator on 127.0.0.1 for the end-to-end tests: installed if missing, started
once for the module, stopped afterwards. Every AWS call goes to it: the environment handed to
boto3 and the AWS CLI points at the emulator and at empty config files, so no real credentials or
endpoints can be reached."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import localstack  # noqa: E402

ACCOUNT = "123456789012"  # LocalStack uses a 12-digit access key ID as the account ID
REGION = "us-west-2"


@pytest.fixture(scope="session")
def emulator() -> Iterator[localstack.LocalStack]:
    with localstack.LocalStack() as running:
        yield running


@pytest.fixture(scope="session")
def aws_env(emulator: localstack.LocalStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return localstack.client_environment(emulator.endpoint, ACCOUNT, REGION, tmp_path_factory.mktemp("aws-home"))


@pytest.fixture(scope="session")
def aws(aws_env: dict[str, str]):  # type: ignore[no-untyped-def]
    """``aws("kms")`` -> a boto3 client bound to the emulator."""
    import boto3

    session = boto3.Session(aws_access_key_id=ACCOUNT, aws_secret_access_key="test", region_name=REGION)
    return lambda service: session.client(service, endpoint_url=aws_env["AWS_ENDPOINT_URL"])
