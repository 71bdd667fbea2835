"""Reading a ``stacks/<env>.py`` file: its ``SETTINGS`` become a validated configuration.

A stack file is Python, so running it can fail in any way; every failure becomes one
:class:`ConfigError` line naming the file, never a traceback.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from scrybe_kms.config.environment import ConfigError, EnvironmentConfig

__all__ = ["load_stack", "stack_config"]


def load_stack(path: Path) -> EnvironmentConfig:
    """Read ``SETTINGS`` from a ``stacks/<env>.py`` file and validate it."""
    if not path.is_file():
        raise ConfigError([f"'stack file' must exist (got {str(path)!r})"])
    spec = importlib.util.spec_from_file_location(f"scrybe_kms_stack_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError([f"'stack file' must be a Python file (got {str(path)!r})"])
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ConfigError([f"the stack file must be valid Python (got {exc.msg} at line {exc.lineno})"],
                          str(path)) from None
    except Exception as exc:
        line = _failing_line(exc, path)
        raise ConfigError([f"the stack file must run without error (got {type(exc).__name__}: {exc}{line})"],
                          str(path)) from None
    settings: Any = getattr(module, "SETTINGS", None)
    if settings is None:
        raise ConfigError(["'SETTINGS' must be defined as a dict of configuration fields (got nothing)"],
                          str(path))
    return stack_config(settings, path)


def _failing_line(exc: BaseException, path: Path) -> str:
    """`` at line N`` of the stack file itself, from the traceback, when it is there."""
    tb = exc.__traceback__
    found, wanted = "", path.resolve()
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == wanted:
            found = f" at line {tb.tb_lineno}"
        tb = tb.tb_next
    return found


def stack_config(settings: Any, path: Path) -> EnvironmentConfig:
    """Validate a stack file's settings; its ``environment`` must match the file name, so
    ``stacks/production.py`` can never write ``out/dev.json``."""
    cfg = EnvironmentConfig.from_mapping(settings, source=str(path))
    if cfg.environment != path.stem:
        raise ConfigError([f"'environment' must match the stack file name {path.stem!r} "
                           f"(got {cfg.environment!r})"], str(path))
    return cfg
