"""Writing build output: every file of a build lands, or none does.

The only code that writes ``out/``. Contents are staged in temporary files next to their targets,
every target is checked before the first rename, and if a rename still fails the files already
replaced are put back, so ``out/`` holds either the previous set or the new one, never a mix, and
no temporary file stays behind.
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["WriteError", "write_all"]


class WriteError(OSError):
    """A write failed; the message names the file. ``out/`` is as it was."""


def _stage(out_dir: Path, name: str, content: str, mode: int) -> Path:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _check_target(target: Path) -> None:
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise WriteError(f"could not write {str(target)!r}: it exists and is not a regular file")


def write_all(out_dir: Path, files: Mapping[str, str], mode: int = 0o644) -> list[str]:
    """Write every file or none; unchanged files are not touched. Returns the names that changed.

    Raises :class:`WriteError` naming the file that could not be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"could not create {str(out_dir)!r}: {exc.strerror or exc}") from None
    todo = {}
    for name, content in sorted(files.items()):
        target = out_dir / name
        _check_target(target)
        if target.is_file() and target.read_text(encoding="utf-8") == content:
            continue
        todo[name] = content
    staged: list[tuple[str, Path, Path | None]] = []  # name, new content, backup of the old file
    try:
        for name, content in todo.items():
            target = out_dir / name
            try:
                tmp = _stage(out_dir, name, content, mode)
            except OSError as exc:
                raise WriteError(f"could not write {str(target)!r}: {exc.strerror or exc}") from None
            backup = None
            if target.exists():
                backup = Path(f"{tmp}.old")
                os.link(target, backup)  # a second name for the old content, for rollback
            staged.append((name, tmp, backup))
        _replace_all(out_dir, staged)
    finally:
        for _, tmp, backup in staged:
            tmp.unlink(missing_ok=True)
            if backup is not None:
                backup.unlink(missing_ok=True)
    return list(todo)


def _replace_all(out_dir: Path, staged: list[tuple[str, Path, Path | None]]) -> None:
    # The renames take microseconds. Hold off Ctrl-C and SIGTERM until they are done, so an
    # interrupted build cannot leave a mix of old and new files.
    blocked = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    done: list[tuple[str, Path | None]] = []
    try:
        for name, tmp, backup in staged:
            target = out_dir / name
            try:
                os.replace(tmp, target)
            except OSError as exc:
                for undone, old in reversed(done):
                    if old is None:
                        (out_dir / undone).unlink(missing_ok=True)
                    else:
                        os.replace(old, out_dir / undone)
                raise WriteError(f"could not write {str(target)!r}: {exc.strerror or exc}; "
                                 "every file was left as it was") from None
            done.append((name, backup))
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
