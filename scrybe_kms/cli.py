"""``scrybe-kms``: build templates (and, with boto3, deploy them).

Building never imports boto3 or any linter: it needs only the configuration and troposphere.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from scrybe_kms.build import artifacts
from scrybe_kms.config import ConfigError, EnvironmentConfig
from scrybe_kms.files import load_stack, stack_config, write_all
from scrybe_kms.template import TemplateTooLarge
from scrybe_kms.validators import ENVIRONMENTS

__all__ = ["main", "run_stack"]

PROG = "scrybe-kms"


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _write(out_dir: Path, configs: Sequence[EnvironmentConfig]) -> int:
    files: dict[str, str] = {}
    try:
        for cfg in configs:
            files.update(artifacts(cfg))
    except TemplateTooLarge as exc:
        return _error(f"{exc}\nnothing was written.")
    try:
        changed = write_all(out_dir, files)
    except OSError as exc:
        return _error(f"could not write to {str(out_dir)!r}: {exc.strerror or exc}")
    for name in sorted(files):
        state = "written" if name in changed else "unchanged"
        print(f"{out_dir / name}: {state}")
    return 0


def build(envs: Sequence[str], out_dir: Path, stacks_dir: Path) -> int:
    """Validate every requested environment first; write only if all of them are valid."""
    configs, problems = [], []
    for env in envs:
        try:
            configs.append(load_stack(stacks_dir / f"{env}.py"))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        return _error("\n".join(problems) + "\nnothing was written.")
    return _write(out_dir, configs)


def run_stack(settings: Mapping[str, Any], source: str, argv: Sequence[str] | None = None) -> int:
    """Entry point for ``python stacks/<env>.py [--out DIR]``; ``source`` is the file's path."""
    parser = argparse.ArgumentParser(description="Build this environment's template.")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory (default: out)")
    args = parser.parse_args(argv)
    try:
        cfg = stack_config(settings, Path(source))
    except ConfigError as exc:
        return _error(f"{exc}\nnothing was written.")
    return _write(args.out, [cfg])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Scrybe PHI KMS templates.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write out/<env>.json and out/<env>.access.md for each environment")
    b.add_argument("--env", action="append", choices=ENVIRONMENTS,
                   help="environment to build (repeatable; default: all)")
    b.add_argument("--out", type=Path, default=Path("out"), help="output directory (default: out)")
    b.add_argument("--stacks", type=Path, default=Path("stacks"),
                   help="directory holding <env>.py stack files (default: stacks)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "build":
        return build(args.env or list(ENVIRONMENTS), args.out, args.stacks)
    return _error(f"unknown command {args.command!r}")  # pragma: no cover - argparse refuses first
