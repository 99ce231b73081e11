"""Ctrl-C and SIGTERM: one line, the conventional exit code, no traceback, nothing lost.

`interrupt_handling()` (around the command `claws` runs) turns SIGINT and SIGTERM into
`Interrupted`, a KeyboardInterrupt carrying the signal: the job unwinds through its `finally`
blocks (atomic writes remove their temporaries, folder locks are released) and the command
prints one line and exits 128 + the signal number (130 for SIGINT, 143 for SIGTERM). Everything
finished before the signal is on disk, so the same command resumes.

The signal goes to the whole process group. DataLoader workers that get SIGINT end quietly
(torch's worker loop swallows a KeyboardInterrupt); a worker killed by SIGTERM makes torch's
SIGCHLD handler raise in the main process, so once a signal has arrived that handler is set to
do nothing. A further signal while the first is being handled ends the process at once with the
same exit code (`os._exit`): what is on disk is whole either way, since every write is atomic.

`deferred_interrupts()` (the training loop) records the first signal instead of raising it, so
the loop ends the step in flight, saves a checkpoint and raises `Interrupted` with a line saying
where; a second signal raises at once (the last checkpoint stays as it was).

Handlers are installed in the main thread only and restored on exit (tests run commands in
process); a signal the process was started with ignored (`nohup`, a background job) stays
ignored. Standard library only: the command-line parser imports this module.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; `summary` is the line to print when the job has one."""

    def __init__(self, signum: int, summary: str | None = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.summary = summary

    @property
    def exit_code(self) -> int:
        """128 + the signal number: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


class _State:
    """What this process has seen: the handler's bookkeeping."""

    installed = 0  # nesting depth of _installed()
    deferring = 0  # nesting depth of deferred_interrupts()
    pending: int | None = None  # a signal recorded while deferring
    raised = False  # an Interrupted was raised: the next signal ends the process
    children: object = None  # the SIGCHLD handler replaced by _quiet_children, restored at exit


def _quiet_children() -> None:
    """SIGCHLD does nothing from now on (until the outermost block ends)."""
    if _State.children is None and threading.current_thread() is threading.main_thread():
        _State.children = signal.getsignal(signal.SIGCHLD) or signal.SIG_DFL
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)


def _handler(signum: int, frame: object) -> None:
    _quiet_children()
    if _State.raised:
        os.write(2, f"\ninterrupted again ({signal.Signals(signum).name}): exiting now\n".encode())
        os._exit(128 + signum)
    if _State.deferring and _State.pending is None:
        _State.pending = signum
        return
    _State.raised = True
    raise Interrupted(signum)


@contextmanager
def _installed() -> Iterator[bool]:
    """Our handler for SIGINT and SIGTERM inside the block; yields whether this is the outermost
    installation (False also off the main thread, where nothing is installed)."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        if previous[s] is not signal.SIG_IGN:
            signal.signal(s, _handler)
    _State.installed += 1
    outermost = _State.installed == 1
    if outermost:
        _State.pending, _State.raised = None, False
    try:
        yield outermost
    finally:
        _State.installed -= 1
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        if outermost and _State.children is not None:
            signal.signal(signal.SIGCHLD, _State.children)
            _State.children = None


@contextmanager
def interrupt_handling() -> Iterator[bool]:
    """SIGINT and SIGTERM raise `Interrupted` inside the block.

    Yields:
        True for the outermost block (a command run by another, as `claws demo` runs its steps,
        leaves the interruption to the outer one).
    """
    with _installed() as outermost:
        yield outermost


class Pending:
    """The signal recorded inside `deferred_interrupts()`, if any."""

    @property
    def signum(self) -> int | None:
        return _State.pending

    def interrupted(self, summary: str) -> Interrupted:
        """The exception to raise now that the work in flight is done and saved."""
        _State.raised = True
        return Interrupted(_State.pending, summary)


@contextmanager
def deferred_interrupts() -> Iterator[Pending]:
    """Inside the block the first SIGINT or SIGTERM is recorded (`Pending.signum`), not raised;
    the caller checks it at a safe point. A second one raises `Interrupted` at once."""
    with _installed():
        _State.deferring += 1
        try:
            yield Pending()
        finally:
            _State.deferring -= 1
            if not _State.deferring:
                _State.pending = None
