"""The AWS session a deploy runs in: the configured region and account, or a clear refusal.

``open_session`` does all the I/O (profile, credentials, STS) and returns a small frozen
``AwsSession`` holding the clients; everything downstream takes that object, so a test can hand in
one built around a stubbed client instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.exceptions as boto_errors

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.deploy.errors import DeployError, aws_errors
from scrybe_kms.deploy.options import DeployOptions

__all__ = ["AwsSession", "SessionFactory", "open_session"]


@dataclass(frozen=True)
class AwsSession:
    """Checked clients for one region and account. ``endpoint`` is only for messages (and to
    know an emulator is in use); the clients already point at it."""

    cloudformation: Any
    region: str
    account: str
    endpoint: str | None = None


SessionFactory = Callable[[DeployOptions, EnvironmentConfig], AwsSession]


def open_session(opts: DeployOptions, cfg: EnvironmentConfig) -> AwsSession:
    """Open a session and check it is for ``cfg``'s region and account."""
    with aws_errors("start an AWS session"):
        # botocore reads AWS_DEFAULT_REGION; the CLI v2 and most SDKs also honour AWS_REGION.
        region = opts.region or os.environ.get("AWS_REGION") or None
        session = boto3.Session(profile_name=opts.profile, region_name=region)
    region = session.region_name
    if not region:
        raise DeployError(f"no AWS region configured: pass --region {cfg.aws_region} or set AWS_REGION "
                          "(or AWS_DEFAULT_REGION, or the profile's region)")
    if region != cfg.aws_region:
        raise DeployError(f"the AWS session's region is {region}, but the {cfg.environment} configuration "
                          f"deploys to {cfg.aws_region}; pass --region {cfg.aws_region}")
    # Without --endpoint-url botocore itself honours AWS_ENDPOINT_URL.
    kwargs = {"endpoint_url": opts.endpoint_url} if opts.endpoint_url else {}
    with aws_errors("read the caller identity"):
        if session.get_credentials() is None:
            raise boto_errors.NoCredentialsError()
        account = str(session.client("sts", **kwargs).get_caller_identity()["Account"])
    if account != cfg.account_id:
        raise DeployError(f"the AWS credentials are for account {account}, but the {cfg.environment} "
                          f"configuration is for account {cfg.account_id}")
    with aws_errors("start an AWS session"):
        cloudformation = session.client("cloudformation", **kwargs)
    return AwsSession(cloudformation, region, account, opts.endpoint_url or os.environ.get("AWS_ENDPOINT_URL"))
