"""Errors the deploy tooling reports: one line (or a few) for a person, never a traceback.

AWS errors are told apart by the botocore error code (``error_code``), never by searching the text
of an already translated ``DeployError``. ``is_transient`` says which failures are worth another
try (throttling, a 5xx, a timeout or a dropped connection: decision D42).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import botocore.exceptions as boto_errors

__all__ = ["DENIED", "THROTTLED", "DeployError", "Interrupted", "LostTrack", "Refused", "aws_errors", "error_code",
           "error_message", "is_transient"]

DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
          "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch"}

#: Throttling and "try again" codes: the AWS SDKs' standard retry mode list (D42).
THROTTLED = frozenset({"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
                       "TooManyRequestsException", "ProvisionedThroughputExceededException",
                       "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
                       "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
                       "EC2ThrottledException", "RequestTimeout", "RequestTimeoutException",
                       "InternalError", "InternalFailure", "ServiceUnavailable"})

#: botocore's own exceptions for a request that got no (complete) answer.
_NO_ANSWER = (boto_errors.ConnectionError, boto_errors.ReadTimeoutError, boto_errors.ConnectTimeoutError,
              boto_errors.ConnectionClosedError, boto_errors.EndpointConnectionError)


class DeployError(Exception):
    """One line (or a few) for the person at the terminal; never a traceback."""

    exit_code = 1


class Refused(DeployError):
    """The change set would replace or remove a protected resource; nothing ran."""

    exit_code = 3


class LostTrack(DeployError):
    """AWS stopped answering while a stack was changing: it may still be in progress."""

    exit_code = 4


class Interrupted(DeployError):
    """Ctrl-C: what the stack is doing and what this run did not get to (exit 130, as a shell does)."""

    exit_code = 130


def error_code(exc: boto_errors.ClientError) -> str:
    """The service's error code (``ValidationError``, ``AccessDenied``, ...); ``""`` if absent."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: boto_errors.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def is_transient(exc: BaseException) -> bool:
    """Throttling, a server-side (5xx) failure, a timeout or a dropped connection."""
    if isinstance(exc, boto_errors.ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return error_code(exc) in THROTTLED or status >= 500
    return isinstance(exc, _NO_ANSWER)


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Translate botocore's exceptions, and answers that are not what AWS sends, into one clear line."""
    try:
        yield
    except (boto_errors.NoCredentialsError, boto_errors.PartialCredentialsError) as exc:
        raise DeployError("no AWS credentials found: set AWS_PROFILE (or --profile), or "
                          f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ({exc})") from None
    except boto_errors.ProfileNotFound as exc:
        raise DeployError(f"AWS profile not found: {exc}") from None
    except (boto_errors.ReadTimeoutError, boto_errors.ConnectTimeoutError) as exc:
        raise DeployError(f"AWS did not answer in time while trying to {action} ({exc}); "
                          "check the endpoint, or raise --timeout") from None
    except boto_errors.EndpointConnectionError as exc:
        raise DeployError(f"cannot reach AWS while trying to {action}: {exc}") from None
    except boto_errors.ClientError as exc:
        code, message = error_code(exc) or "?", error_message(exc) or str(exc)
        if code in DENIED:
            raise DeployError(f"AWS denied the request to {action} ({code}): {message}") from None
        raise DeployError(f"could not {action} ({code}): {message}") from None
    except boto_errors.BotoCoreError as exc:
        raise DeployError(f"could not {action}: {exc}") from None
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        # The answer parsed, but lacks what the API promises: not AWS (a plain web server at
        # --endpoint-url, a proxy's error page). Only the AWS calls and their answers are in here.
        raise DeployError(f"could not {action}: the endpoint's answer is not what AWS sends "
                          f"({type(exc).__name__}: {exc}); is --endpoint-url right?") from None
