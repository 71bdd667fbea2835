"""Writing the application's ``.env`` lines the way an editor would (decision D45).

The file named by ``--env-file`` is edited in place: a symlink is followed to its target, hard
links stay linked, owner, group and mode stay, each line keeps its own ending (``\\n`` or
``\\r\\n``), a byte-order mark stays, and every line it does not set is left byte for byte. Lines
are split on ``\\n`` only, never on the other characters ``str.splitlines`` treats as breaks
(``\\x0c``, U+2028, ...), which may sit inside a value. ``KEY=v``, ``KEY = v`` and ``export KEY=v``
are recognised. It refuses a read-only file, a non-file, a file that is not UTF-8, and a missing
directory (it never creates one). The write is all or nothing: a crash leaves the old file.

``check_env_target`` runs before the stack is touched; ``write_env_outputs`` after it succeeded.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from scrybe_kms.deploy.errors import DeployError

__all__ = ["check_env_target", "merge_env", "parse_env_lines", "split_lines", "write_env_file",
           "write_env_outputs"]

BOM = "\ufeff"
_ASSIGNMENT = re.compile(r"^(?P<lead>[ \t]*(?:export[ \t]+)?)(?P<key>[A-Za-z_][A-Za-z0-9_]*)(?P<sep>[ \t]*=[ \t]*)"
                         r"(?P<rest>.*)$", re.DOTALL)
#: A comment after an unquoted value (`` # ...``), or after a quoted one.
_UNQUOTED_COMMENT = re.compile(r"[ \t]+#.*$", re.DOTALL)
_QUOTED = re.compile(r"^(?P<q>['\"]).*?(?P=q)(?P<tail>[ \t]+#.*)?$", re.DOTALL)


def split_lines(text: str) -> list[tuple[str, str]]:
    """``(content, ending)`` per line, split on ``\\n`` only; ending is ``\\n``, ``\\r\\n`` or ``""``."""
    pieces = text.split("\n")
    lines = []
    for number, piece in enumerate(pieces):
        last = number == len(pieces) - 1
        if last:
            if piece:
                lines.append((piece, ""))
        elif piece.endswith("\r"):
            lines.append((piece[:-1], "\r\n"))
        else:
            lines.append((piece, "\n"))
    return lines


def parse_env_lines(text: str) -> dict[str, str]:
    """``KEY=value`` lines (the EnvironmentConfig output) as a dict, in order."""
    found = {}
    for content, _ in split_lines(text.removeprefix(BOM)):
        match = _ASSIGNMENT.match(content)
        if match:
            found[match["key"]] = match["rest"].strip()
    return found


def _comment(rest: str) -> str:
    """The comment that followed the old value, to keep after the new one."""
    quoted = _QUOTED.match(rest)
    if quoted:
        return quoted["tail"] or ""
    unquoted = _UNQUOTED_COMMENT.search(rest)
    return unquoted.group(0) if unquoted else ""


def merge_env(existing: str, values: Mapping[str, str]) -> str:
    """Set each key of ``values`` where it already is (keeping ``export``, the spacing around
    ``=``, a trailing comment and the line's ending), append the others; every other line stays
    exactly as it was."""
    bom = BOM if existing.startswith(BOM) else ""
    lines = split_lines(existing.removeprefix(BOM))
    newline = lines[0][1] if lines and lines[0][1] else "\n"
    out, done = [], set()
    for content, ending in lines:
        match = _ASSIGNMENT.match(content)
        if match and match["key"] in values:
            key = match["key"]
            content = f"{match['lead']}{key}{match['sep']}{values[key]}{_comment(match['rest'])}"
            done.add(key)
        out.append(content + ending)
    if out and not out[-1].endswith("\n"):
        out[-1] += newline
    out += [f"{key}={value}{newline}" for key, value in values.items() if key not in done]
    return bom + "".join(out)


def _decode(data: bytes, shown: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeployError(f"--env-file {shown} is not UTF-8 text (byte {exc.start}: {exc.reason}); "
                          "refusing to rewrite it") from None


def check_env_target(path: Path) -> Path:
    """The real file ``path`` names (symlinks followed), if it can be rewritten: an existing
    writable UTF-8 regular file, or a new one in an existing writable directory. Writes nothing."""
    real = Path(os.path.realpath(path))
    try:
        info = os.stat(real)
    except FileNotFoundError:
        parent = real.parent
        if not parent.is_dir():
            raise DeployError(f"--env-file {path}: the directory {parent} does not exist; create it first "
                              "(scrybe-kms never creates directories)") from None
        if not os.access(parent, os.W_OK | os.X_OK):
            raise DeployError(f"--env-file {path} does not exist and {parent} is not writable") from None
        return real
    except OSError as exc:
        raise DeployError(f"--env-file {path} cannot be used: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise DeployError(f"--env-file {path} is {kind}; name the .env file itself")
    if not info.st_mode & 0o222 or not os.access(real, os.W_OK):
        raise DeployError(f"--env-file {path} is read-only; make it writable (or pass another file) and run again")
    try:
        _decode(real.read_bytes(), path)
    except OSError as exc:
        raise DeployError(f"--env-file {path} cannot be read: {exc.strerror or exc}") from None
    return real


def write_env_file(path: Path, values: Mapping[str, str]) -> bool:
    """Merge ``values`` into ``path``; ``False`` if it already said exactly that."""
    real = check_env_target(path)
    if not real.exists():
        _create(real, merge_env("", values).encode("utf-8"))
        return True
    old = real.read_bytes()
    new = merge_env(_decode(old, path), values).encode("utf-8")
    if new == old:
        return False
    info = os.stat(real)
    if info.st_nlink > 1 or not _can_hand_over(info):
        _rewrite_in_place(real, old, new)
    else:
        _replace(real, new, info)
    return True


def _can_hand_over(info: os.stat_result) -> bool:
    """Whether a new file can be given the old one's owner and group."""
    if os.geteuid() == 0:
        return True
    return info.st_uid == os.geteuid() and (info.st_gid == os.getegid() or info.st_gid in os.getgroups())


def _create(real: Path, data: bytes) -> None:
    """A new owner-only file; removed again if writing it fails."""
    fd = os.open(real, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _write_all(fd, data)
    except BaseException:
        os.close(fd)
        real.unlink(missing_ok=True)
        raise
    os.close(fd)


def _replace(real: Path, data: bytes, info: os.stat_result) -> None:
    """A new file beside the old one, with its owner, group and mode, renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
    try:
        try:
            if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
                os.fchown(fd, info.st_uid, info.st_gid)
            os.fchmod(fd, stat.S_IMODE(info.st_mode))  # after chown, which may clear set-id bits
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, real)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_directory(real.parent)


def _rewrite_in_place(real: Path, old: bytes, new: bytes) -> None:
    """For a hard-linked file (or one whose owner a new file could not get): overwrite the same
    inode. A backup copy beside it is written first and removed only once the new content is on
    disk; any failure puts the old content back (D45)."""
    fd, backup = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".backup", dir=real.parent)
    try:
        _write_all(fd, old)
    finally:
        os.close(fd)
    try:
        _overwrite(real, new)
    except BaseException:
        _overwrite(real, old)
        Path(backup).unlink(missing_ok=True)
        raise
    Path(backup).unlink(missing_ok=True)


def _overwrite(real: Path, data: bytes) -> None:
    fd = os.open(real, os.O_WRONLY)
    try:
        os.ftruncate(fd, 0)
        _write_all(fd, data)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def _sync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be fsynced
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_env_outputs(path: Path, outputs: Mapping[str, str], stack: str) -> bool:
    """Merge the stack's ``EnvironmentConfig`` output into ``path``."""
    if "EnvironmentConfig" not in outputs:
        raise DeployError(f"stack {stack} has no EnvironmentConfig output to write")
    try:
        return write_env_file(path, parse_env_lines(outputs["EnvironmentConfig"]))
    except OSError as exc:
        raise DeployError(f"could not write {path}: {exc.strerror or exc}") from None
