"""Errors the deploy tooling reports: one line (or a few) for a person, never a traceback.

AWS errors are told apart by the botocore error code (``error_code``), never by searching the text
of an already translated ``DeployError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import botocore.exceptions as boto_errors

__all__ = ["DENIED", "DeployError", "Refused", "aws_errors", "error_code", "error_message"]

DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
          "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch"}


class DeployError(Exception):
    """One line (or a few) for the person at the terminal; never a traceback."""

    exit_code = 1


class Refused(DeployError):
    """The change set would replace or remove a protected resource; nothing ran."""

    exit_code = 3


def error_code(exc: boto_errors.ClientError) -> str:
    """The service's error code (``ValidationError``, ``AccessDenied``, ...); ``""`` if absent."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: boto_errors.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


@contextmanager
def aws_errors(action: str) -> Iterator[None]:
    """Translate botocore's exceptions into one clear line."""
    try:
        yield
    except (boto_errors.NoCredentialsError, boto_errors.PartialCredentialsError) as exc:
        raise DeployError("no AWS credentials found: set AWS_PROFILE (or --profile), or "
                          f"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ({exc})") from None
    except boto_errors.ProfileNotFound as exc:
        raise DeployError(f"AWS profile not found: {exc}") from None
    except boto_errors.EndpointConnectionError as exc:
        raise DeployError(f"cannot reach AWS while trying to {action}: {exc}") from None
    except boto_errors.ClientError as exc:
        code, message = error_code(exc) or "?", error_message(exc) or str(exc)
        if code in DENIED:
            raise DeployError(f"AWS denied the request to {action} ({code}): {message}") from None
        raise DeployError(f"could not {action} ({code}): {message}") from None
    except boto_errors.BotoCoreError as exc:
        raise DeployError(f"could not {action}: {exc}") from None
