"""Every file and folder gibbslda writes goes through here: written beside its target,
fsync'd, then renamed into place, so a reader never sees half of one.

Modes, one policy: files are created 0o666 and folders 0o777, less the process umask (as
``open`` and ``mkdir`` make them); nothing is made private, and the umask is never read
or changed (changing it races with other threads).

A folder replaces the one at ``path`` in two renames: the old one aside to
``.NAME.old-<pid>-<token>``, the new one (written as ``.NAME.tmp-<pid>-<token>``) into
place; the old one is removed after. :func:`recover` undoes a crash between the renames.
A folder is replaced only when it is empty or ``is_ours`` says that gibbslda wrote it.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
from pathlib import Path

_OWNER = re.compile(r"(\d+)-")  # the writer's pid, after ".NAME.tmp-"
_SET_ASIDE = re.compile(r"\d+-[0-9a-f]{8}")  # after ".NAME.old-": the names _swap makes


def write_file(path, write) -> Path:
    """Write one file atomically and durably; return its path.

    ``write(tmp)`` fills the new file ``tmp`` (a Path beside ``path``, already created);
    it is fsync'd and renamed over ``path``, then the folder is fsync'd. A regular file at
    ``path`` is replaced; anything else there (a folder, a link) is refused with
    ValueError before ``write`` runs.
    """
    path = Path(path)
    check_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_leftovers(path)
    tmp = _new_sibling(path, lambda p: os.close(os.open(p, os.O_CREAT | os.O_EXCL
                                                        | os.O_WRONLY, 0o666)))
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(path.parent, folder=True)
    return path


def write_folder(path, write, *, is_ours, kind: str) -> Path:
    """Write one folder atomically and durably; return its path.

    ``path`` must be absent, an empty folder, or a folder ``is_ours(path)`` accepts (else
    ValueError, before ``write`` runs; ``kind`` names the folder in the message, such as
    "a gibbslda model folder"). ``write(tmp)`` fills the new empty folder ``tmp``; every
    file in it and the folder are fsync'd, it replaces ``path`` (see the module
    docstring) and the parent folder is fsync'd.
    """
    path = Path(path)
    recover(path, is_ours=is_ours)
    check_folder(path, is_ours=is_ours, kind=kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_sibling(path, lambda p: os.mkdir(p, 0o777))
    try:
        write(tmp)
        _fsync_tree(tmp)
        check_folder(path, is_ours=is_ours, kind=kind)  # again: it may have changed
        _swap(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing left there after the swap
    return path


def check_file(path) -> None:
    """Raise ValueError when ``path`` exists and is not a regular file."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        what = ("a folder" if stat.S_ISDIR(mode) else
                "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file")
        raise ValueError(f"{path} exists and is {what}, not a file to replace: choose "
                         "another output path or remove it")


def check_folder(path, *, is_ours, kind: str) -> None:
    """Raise ValueError unless ``path`` is absent, an empty folder, or ``is_ours``."""
    path = Path(path)
    if not os.path.lexists(path):
        return
    if path.is_symlink():
        detail = "it is a symbolic link; pass the folder it points to"
    elif not path.is_dir():
        detail = "it is a file"
    else:
        names = sorted(os.listdir(path))
        if not names or is_ours(path):
            return
        detail = "it holds " + ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    raise ValueError(f"{path} exists and is not {kind} ({detail}): choose another output "
                     "path or remove it")


def recover(path, *, is_ours) -> None:
    """Finish what a writer killed while replacing the folder ``path`` left beside it.

    Killed between its two renames, ``path`` is missing and the previous folder is
    ``.NAME.old-*``: it is put back (the newest, when there are several). Folders set aside
    are removed once ``path`` holds one of ours again; so are temporary ``.NAME.tmp-*``
    folders and files whose writer (the pid in the name) is no longer running. A folder
    set aside is removed or put back only when ``is_ours`` accepts it (or it is empty),
    and never while its writer (the pid in its name) runs: that writer is between its two
    renames and finishes the swap itself.
    """
    path = Path(path)
    prefix = len(path.name) + len(".old-") + 1
    olds = [old for old in _siblings(path, "old") if old.is_dir() and not old.is_symlink()
            and not _writing(_OWNER.match(old.name[prefix:] + "-"))]
    for old in sorted(olds, key=lambda old: old.stat().st_mtime, reverse=True):
        in_place = path.is_dir() and not path.is_symlink() and is_ours(path)
        if not is_ours(old):
            if not any(old.iterdir()):
                old.rmdir()
            elif in_place and _SET_ASIDE.fullmatch(old.name[prefix:]):
                # named by _swap, so ours, but half removed: its writer died in rmtree
                shutil.rmtree(old, ignore_errors=True)
        elif not os.path.lexists(path) or _is_empty_dir(path):
            os.replace(old, path)
            _fsync(path.parent, folder=True)
        elif in_place:
            shutil.rmtree(old, ignore_errors=True)  # the new one made it into place
    _remove_dead_leftovers(path)


def _swap(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` to ``path``; a folder at ``path`` is set aside, then removed."""
    if not os.path.lexists(path):
        os.replace(tmp, path)
        _fsync(path.parent, folder=True)
        return
    old = path.with_name(f".{path.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old, path)
        raise
    _fsync(path.parent, folder=True)  # both renames are on disk before the old one goes
    shutil.rmtree(old, ignore_errors=True)


def _siblings(path: Path, kind: str) -> list[Path]:
    prefix = f".{path.name}.{kind}-"
    try:
        return [path.parent / name for name in os.listdir(path.parent)
                if name.startswith(prefix)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _remove_dead_leftovers(path: Path) -> None:
    """Remove ``.NAME.tmp-<pid>-*`` beside ``path`` whose writer is not running (names
    without a pid come from gibbslda versions before pids were recorded)."""
    prefix = len(path.name) + len(".tmp-") + 1
    for tmp in _siblings(path, "tmp"):
        owner = _OWNER.match(tmp.name[prefix:])
        if owner is not None and _alive(int(owner.group(1))):
            continue
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def _new_sibling(path: Path, make) -> Path:
    """A new ``.NAME.tmp-<pid>-<token>`` beside ``path``, created by ``make(tmp)``."""
    while True:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            make(tmp)
            return tmp
        except FileExistsError:
            continue


def _fsync_tree(folder: Path) -> None:
    """fsync every file under ``folder``, then every folder, deepest first."""
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            _fsync(Path(root, name))
        _fsync(Path(root), folder=True)


def _fsync(path: Path, *, folder: bool = False) -> None:
    if os.name != "posix" and folder:
        return  # Windows cannot open a folder to flush it
    fd = os.open(path, os.O_RDONLY if os.name == "posix" else os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _writing(owner) -> bool:
    """Whether a ``.NAME.old-<pid>...`` name's writer is still running."""
    return owner is not None and _alive(int(owner.group(1)))


def _alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # cannot tell without signalling it: keep its files
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
