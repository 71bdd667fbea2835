"""The AWS session a deploy runs in: the configured region and account, or a clear refusal.

``open_session`` does all the I/O (profile, credentials, STS) and returns a small frozen
``AwsSession`` holding the clients; everything downstream takes that object, so a test can hand in
one built around stubbed clients instead. Every client has the same timeouts and retry mode
(``client_config``, decisions D42 and D43).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlparse

import boto3
import botocore.exceptions as boto_errors
from botocore.config import Config

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.deploy.errors import DeployError, aws_errors
from scrybe_kms.deploy.options import DeployOptions

__all__ = ["AwsSession", "SessionFactory", "check_endpoint", "client_config", "open_session"]

#: Tries per request, the first included (botocore's ``standard`` mode; D42).
ATTEMPTS = 2


@dataclass(frozen=True)
class AwsSession:
    """Checked clients for one region and account. ``endpoint`` is only for messages (and to
    know an emulator is in use); the clients already point at it. ``make_client`` gives the
    other services' clients (KMS, S3, ...) the preflight and ``--adopt`` read from."""

    cloudformation: Any
    region: str
    account: str
    endpoint: str | None = None
    make_client: Callable[[str], Any] | None = None

    def client(self, service: str) -> Any:
        if self.make_client is None:
            raise DeployError(f"this session has no {service} client")
        return self.make_client(service)


SessionFactory = Callable[[DeployOptions, EnvironmentConfig], AwsSession]


def client_config(timeout: float) -> Config:
    """``timeout`` seconds to connect and as long for each answer; ``standard`` retries (D42, D43)."""
    return Config(connect_timeout=timeout, read_timeout=timeout,
                  retries={"mode": "standard", "total_max_attempts": ATTEMPTS})


def check_endpoint(url: str, source: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise DeployError(f"{source} {url!r} is not an endpoint URL; expected http(s)://host[:port]")


def open_session(opts: DeployOptions, cfg: EnvironmentConfig) -> AwsSession:
    """Open a session and check it is for ``cfg``'s region (or the DR region ``opts.region`` names)
    and account."""
    if opts.endpoint_url:
        check_endpoint(opts.endpoint_url, "--endpoint-url")
    elif os.environ.get("AWS_ENDPOINT_URL"):
        check_endpoint(os.environ["AWS_ENDPOINT_URL"], "AWS_ENDPOINT_URL")
    if not opts.timeout > 0:
        raise DeployError(f"--timeout must be a positive number of seconds, not {opts.timeout}")
    with aws_errors("start an AWS session"):
        # botocore reads AWS_DEFAULT_REGION; the CLI v2 and most SDKs also honour AWS_REGION.
        region = opts.region or os.environ.get("AWS_REGION") or None
        session = boto3.Session(profile_name=opts.profile, region_name=region)
    region = session.region_name
    # The home region, unless --region names one of the configuration's DR regions (its stack).
    expected = opts.region if opts.region in cfg.disaster_recovery_regions else cfg.aws_region
    if not region:
        raise DeployError(f"no AWS region configured: pass --region {cfg.aws_region} or set AWS_REGION "
                          "(or AWS_DEFAULT_REGION, or the profile's region)")
    if region != expected:
        raise DeployError(f"the AWS session's region is {region}, but the {cfg.environment} configuration "
                          f"deploys to {cfg.aws_region}; pass --region {cfg.aws_region}")
    # Without --endpoint-url botocore itself honours AWS_ENDPOINT_URL.
    kwargs: dict[str, Any] = {"config": client_config(opts.timeout)}
    if opts.endpoint_url:
        kwargs["endpoint_url"] = opts.endpoint_url

    @cache
    def make_client(service: str) -> Any:
        with aws_errors(f"start an AWS {service} client"):
            try:
                return session.client(service, **kwargs)
            except ValueError as exc:  # botocore: "Invalid endpoint: ..."
                raise DeployError(f"cannot use the AWS endpoint: {exc}") from None

    with aws_errors("read the caller identity"):
        if session.get_credentials() is None:
            raise boto_errors.NoCredentialsError()
        account = str(make_client("sts").get_caller_identity()["Account"])
    if account != cfg.account_id:
        raise DeployError(f"the AWS credentials are for account {account}, but the {cfg.environment} "
                          f"configuration is for account {cfg.account_id}")
    return AwsSession(make_client("cloudformation"), region, account,
                      opts.endpoint_url or os.environ.get("AWS_ENDPOINT_URL"), make_client)
