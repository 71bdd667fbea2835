"""Writing the application's ``.env`` lines without disturbing the rest of the file."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from scrybe_kms.deploy.errors import DeployError

__all__ = ["merge_env", "parse_env_lines", "write_env_file", "write_env_outputs"]

_ASSIGNMENT = re.compile(r"^(?P<export>\s*(?:export\s+)?)(?P<key>[A-Za-z_][A-Za-z0-9_]*)=")


def parse_env_lines(text: str) -> dict[str, str]:
    """``KEY=value`` lines (the EnvironmentConfig output) as a dict, in order."""
    found = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def merge_env(existing: str, values: Mapping[str, str]) -> str:
    """Replace the value of each key already in ``existing`` (keeping ``export`` and position),
    append the others; every other line, comment and blank stays as it was."""
    out, done = [], set()
    for line in existing.splitlines():
        match = _ASSIGNMENT.match(line)
        if match and match["key"] in values:
            out.append(f"{match['export']}{match['key']}={values[match['key']]}")
            done.add(match["key"])
        else:
            out.append(line)
    out += [f"{key}={value}" for key, value in values.items() if key not in done]
    return "\n".join(out) + "\n"


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Merge into ``path`` atomically, keeping its permissions (a new file is owner-only)."""
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(merge_env(existing, values))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_env_outputs(path: Path, outputs: Mapping[str, str], stack: str) -> None:
    """Merge the stack's ``EnvironmentConfig`` output into ``path``."""
    if "EnvironmentConfig" not in outputs:
        raise DeployError(f"stack {stack} has no EnvironmentConfig output to write")
    try:
        write_env_file(path, parse_env_lines(outputs["EnvironmentConfig"]))
    except OSError as exc:
        raise DeployError(f"could not write {path}: {exc.strerror or exc}") from None
