"""One job per output folder: a lock file that names its holder.

Every command that writes a folder (extract, import-features, train on its run folder, score)
holds `<folder>/.claws.lock` while it works; a second job on the same folder is refused at once
(FolderLocked, an OSError: exit 2) with the holder's command, pid, host and start time, instead
of both doing all the work and racing on the same files.

The file is locked with flock(2), which the kernel releases when the holder ends in any way, kill -9
included, so a lock is never stale: the next job takes it over, and a file that still names a
holder (one that did not release it) is logged as taken over. Forked children (decoding workers)
close their copy of the lock at fork, so a killed job's workers do not keep the folder locked.
Under torchrun the ranks of one job share the folder by design: rank 0 holds the lock for the
job, and every rank learns whether it got it (a collective), so all ranks refuse or all work.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shlex
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from claws.extract.distributed import Rank

logger = logging.getLogger(__name__)

LOCK_NAME = ".claws.lock"  # a leading dot and no video suffix: no output glob matches it

_held: set[int] = set()  # lock descriptors of this process, closed in forked children
_fork_hook = False


class FolderLocked(OSError):
    """Another job holds the folder; the message names it and says what to do."""


@contextmanager
def folder_lock(folder: Path, command: str, rank: Rank | None = None) -> Iterator[None]:
    """Hold `folder`'s lock for the duration of the block (the folder is created).

    Args:
        folder: the output folder of the job.
        command: what the job is ("claws score"), recorded for the refusal message.
        rank: under torchrun, this process's rank: rank 0 locks for the whole job.

    Raises:
        FolderLocked: another job holds the folder.
    """
    folder = Path(folder)
    distributed = rank is not None and rank.distributed
    leader = not distributed or rank.rank == 0
    created = leader and not folder.exists()  # removed again if the job leaves it empty
    descriptor, refusal = None, None
    if leader:
        try:
            descriptor = _acquire(folder, command)
        except FolderLocked as err:
            refusal = err
    if distributed:
        from claws.extract.distributed import all_sum  # torch.distributed, only under torchrun

        if all_sum(int(refusal is not None), rank) and refusal is None:
            _release(folder, descriptor)
            refusal = FolderLocked(f"{folder}: rank 0 of this job found it in use by another "
                                   "job (see rank 0's message)")
    if refusal is not None:
        raise refusal
    try:
        yield
        if distributed:  # every rank is done writing before rank 0 lets another job in
            all_sum(0, rank)
    finally:
        _release(folder, descriptor)
        if created and not any(folder.iterdir()):
            folder.rmdir()


def _acquire(folder: Path, command: str) -> int | None:
    """Lock `folder` for this process: the descriptor holding the lock (None: cannot lock)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise FolderLocked(_refusal(folder, _holder(path))) from None
        except OSError as err:
            os.close(descriptor)
            if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            logger.warning("%s: cannot lock it (%s): its file system has no file locks, so "
                           "another job writing it at the same time would go unnoticed",
                           folder, err)
            return None
        try:
            same = os.fstat(descriptor).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # else the holder released (removed) the file while we opened it: again
            break
        os.close(descriptor)
    previous = _holder(path)
    if previous:
        logger.warning("%s: taking over the lock of %s, which ended without releasing it "
                       "(killed?); its unfinished work is redone or resumed", folder,
                       _describe(previous))
    record = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
              "argv": shlex.join(sys.argv),
              "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
              "torchrun_job": os.environ.get("TORCHELASTIC_RUN_ID", "")}
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, (json.dumps(record) + "\n").encode(), 0)
    _held.add(descriptor)
    _close_in_forked_children()
    return descriptor


def _release(folder: Path, descriptor: int | None) -> None:
    """Remove the lock file, then unlock (removing first: a job waiting on the old file retries)."""
    if descriptor is None:
        return
    try:
        (folder / LOCK_NAME).unlink(missing_ok=True)
    finally:
        _held.discard(descriptor)
        os.close(descriptor)


def _close_in_forked_children() -> None:
    global _fork_hook
    if not _fork_hook:
        os.register_at_fork(after_in_child=_forget_locks)
        _fork_hook = True


def _forget_locks() -> None:
    for descriptor in list(_held):
        try:
            os.close(descriptor)
        except OSError:
            pass
    _held.clear()


def _holder(path: Path) -> dict:
    """What the lock file says about its holder ({} when empty or unreadable)."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    try:
        holder = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return {"command": text.strip()[:200]}
    return holder if isinstance(holder, dict) else {}


def _describe(holder: dict) -> str:
    argv = f"; command line: {holder['argv']}" if holder.get("argv") else ""
    return (f"{holder.get('command') or 'a claws job'} (pid {holder.get('pid', '?')} on "
            f"{holder.get('host', '?')}, since {holder.get('started', '?')}{argv})")


def _refusal(folder: Path, holder: dict) -> str:
    text = f"{folder} is in use by another job: {_describe(holder)}; "
    pid = holder.get("pid")
    if holder.get("host") == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
        return text + ("that process has ended but a process it started still holds the folder; "
                       "retry in a few seconds")
    return text + "wait for it to finish (or stop it), or write to another folder"


def _alive(pid: int) -> bool:
    """Whether a process of this host has this pid (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
