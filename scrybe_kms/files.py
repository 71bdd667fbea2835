"""Loading stack files and writing build output: the only module that touches the disk."""

from __future__ import annotations

import importlib.util
import os
import signal
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scrybe_kms.config import ConfigError, EnvironmentConfig

__all__ = ["load_stack", "stack_config", "write_all"]


def load_stack(path: Path) -> EnvironmentConfig:
    """Read ``SETTINGS`` from a ``stacks/<env>.py`` file and validate it."""
    if not path.is_file():
        raise ConfigError([f"'stack file' must exist (got {str(path)!r})"])
    spec = importlib.util.spec_from_file_location(f"scrybe_kms_stack_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ConfigError([f"the stack file must be valid Python (got {exc.msg} at line {exc.lineno})"],
                          str(path)) from None
    settings: Any = getattr(module, "SETTINGS", None)
    if settings is None:
        raise ConfigError(["'SETTINGS' must be defined as a dict of configuration fields (got nothing)"],
                          str(path))
    return stack_config(settings, path)


def stack_config(settings: Any, path: Path) -> EnvironmentConfig:
    """Validate a stack file's settings; its ``environment`` must match the file name, so
    ``stacks/production.py`` can never write ``out/dev.json``."""
    cfg = EnvironmentConfig.from_mapping(settings, source=str(path))
    if cfg.environment != path.stem:
        raise ConfigError([f"'environment' must match the stack file name {path.stem!r} "
                           f"(got {cfg.environment!r})"], str(path))
    return cfg


def write_all(out_dir: Path, files: Mapping[str, str], mode: int = 0o644) -> list[str]:
    """Write every file or none: all contents go to temporary files first, then each is
    renamed over its target (atomic per file on POSIX). Unchanged files are not touched.
    Returns the names that changed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[str, Path]] = []
    try:
        for name, content in sorted(files.items()):
            target = out_dir / name
            if target.is_file() and target.read_text(encoding="utf-8") == content:
                continue
            fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
            staged.append((name, Path(tmp_name)))
            try:
                handle = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
            except BaseException:
                os.close(fd)
                raise
            with handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, mode)
    except BaseException:
        for _, tmp in staged:
            tmp.unlink(missing_ok=True)
        raise
    # Everything is staged; the renames take microseconds. Hold off Ctrl-C and SIGTERM until they
    # are done, so an interrupted build cannot leave a mix of old and new files.
    blocked = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        for name, tmp in staged:
            os.replace(tmp, out_dir / name)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return [name for name, _ in staged]
