"""What a deploy has started and not finished, and what it says when it is cut short.

``Journal`` notes the change set a deploy created (by name, before the call) and what the current
stack still lacks from this run; ``interrupted`` turns Ctrl-C into one line (decision D46): the
stack's state, the unexecuted change set it deleted, what was not done. ``resume`` is the advice
when AWS stopped answering while a stack was changing (D42).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from scrybe_kms.config import EnvironmentConfig
from scrybe_kms.deploy import changeset
from scrybe_kms.deploy.errors import DeployError, Interrupted
from scrybe_kms.deploy.session import AwsSession
from scrybe_kms.deploy.stack import read_stack

__all__ = ["Journal", "interrupted", "no_interrupts", "resume"]


@dataclass
class Journal:
    """What this run has started and not finished: what Ctrl-C or a lost connection reports."""

    stack: str = ""
    #: Created and not (yet) executed: Ctrl-C deletes it.
    change_set: changeset.ChangeSet | None = None
    #: What the current stack still lacks from this run (guards, .env lines).
    todo: list[str] = field(default_factory=list)
    #: Stacks this run has not started on.
    not_started: list[str] = field(default_factory=list)

    def done(self, step: str) -> None:
        if step in self.todo:
            self.todo.remove(step)


@contextmanager
def no_interrupts() -> Iterator[None]:
    """Clean-up that a second Ctrl-C must not cut short (only the main thread can do this)."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to shield
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupted(aws: AwsSession | None, journal: Journal, cfg: EnvironmentConfig) -> Interrupted:
    """One line for Ctrl-C: the stack's state, the change set it deleted, what was skipped."""
    parts: list[str] = []
    with no_interrupts():
        if aws is None or not journal.stack:
            return Interrupted("interrupted before any stack was touched; nothing was changed")
        created = journal.change_set
        if created is not None:
            try:
                changeset.discard(aws.cloudformation, journal.stack, created)
                parts.append(f"its unexecuted change set {created.name} was deleted")
            except DeployError:
                parts.append(f"its change set {created.name} could not be deleted (aws cloudformation "
                             "delete-change-set)")
        try:
            current = read_stack(aws.cloudformation, journal.stack)
            state = f"{journal.stack} is {current.status or 'absent'}"
            if current.state.busy:
                state += " (CloudFormation carries on without this command)"
        except DeployError:
            state = f"the state of {journal.stack} could not be read"
    if journal.todo:
        parts.append(f"not done: {', '.join(journal.todo)}")
    if journal.not_started:
        parts.append(f"not started: {', '.join(journal.not_started)}")
    rerun = f"; run `scrybe-kms deploy {cfg.environment}` again to finish" if journal.todo or journal.not_started \
        else ""
    return Interrupted("; ".join([f"interrupted: {state}", *parts]) + rerun)


def resume(journal: Journal, cfg: EnvironmentConfig) -> str:
    if journal.change_set is not None:  # lost before executing: the stack itself did not change
        return (f"Nothing was executed: change set {journal.change_set.name} of {journal.stack} was left "
                f"unexecuted (the next run makes a new one). Run `scrybe-kms deploy {cfg.environment}` again.")
    todo = ", ".join(journal.todo) or "nothing else"
    return (f"{journal.stack} may still be in progress: CloudFormation carries on without this command. Run "
            f"`scrybe-kms deploy {cfg.environment}` again: it follows the stack to the end, then applies what this "
            f"run did not get to ({todo}).")
