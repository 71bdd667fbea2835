"""What ``scrybe-kms deploy`` and ``env-config`` were asked to do (the command line, as data)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["DEFAULT_TIMEOUT", "STACK_CHOICES", "DeployOptions", "Say", "StackChoice"]

#: Prints one line for the person at the terminal.
Say = Callable[[str], None]

#: Which of an environment's stacks ``deploy`` works on: all (key, alarm, filter, then the DR regions'),
#: the home region's three (``home``, e.g. while a DR region is unavailable), or one kind.
StackChoice = Literal["all", "home", "keys", "alarms", "filters", "replicas"]
STACK_CHOICES: tuple[StackChoice, ...] = ("all", "home", "keys", "alarms", "filters", "replicas")

#: Seconds to wait for a connection, and then for an answer, before a try counts as failed
#: (botocore's own default is 60 s each, times its retries: minutes for a dead endpoint; D43).
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class DeployOptions:
    environment: str
    stacks_dir: Path = Path("stacks")
    #: The key stack's template (e.g. ``out/<env>.json``); built from the configuration if absent.
    template_file: Path | None = None
    #: The key stack's name; the alarm stack is named after it, ``<stack_name>-alarms``.
    stack_name: str | None = None
    plan_only: bool = False
    env_file: Path | None = None
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    poll_seconds: float = 1.0
    stack: StackChoice = "all"
    #: The alarm stack's template (e.g. ``out/<env>.alarms.json``); built if absent.
    alarms_template_file: Path | None = None
    #: The filter stack's template (e.g. ``out/<env>.filters.json``); built if absent.
    filters_template_file: Path | None = None
    #: Bring back what a deleted key stack retained (keys, aliases, buckets, log group) with a
    #: CloudFormation import, then update to the full template (D40).
    adopt: bool = False
    timeout: float = DEFAULT_TIMEOUT
