"""Every writer is flushed when its process ends, however it ends.

- Normal interpreter exit: `atexit`. The registry holds the writers strongly, so a logger the
  program dropped without `close()` is still written out.
- A child that multiprocessing ends with `os._exit` (fork and forkserver start methods), where
  `atexit` never runs: a `multiprocessing.util.Finalize` that its `_exit_function` runs, made
  when a writer thread starts in that process (after multiprocessing cleared the finalizers
  the child inherited).
- `os.fork()`: the child's copies of the writers are reset (`Writer.after_fork_in_child`).
- SIGTERM (a scheduler's preemption): a handler, installed from the main thread over the
  default action or a Python handler (never over SIG_IGN), writes what is queued within
  SIGTERM_FLUSH_S, then hands the signal on: to the previous Python handler, or by dying of
  it with the default action (the writers then leave the run open, as a killed process does:
  a restart resumes it).

A process ended by SIGKILL or `os._exit` outside multiprocessing loses its unflushed tail.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
from typing import Any, Protocol

__all__ = ["install_sigterm", "register", "thread_started", "unregister"]

SIGTERM_FLUSH_S = 5.0


class _Writer(Protocol):
    def flush(self, timeout: float | None) -> bool: ...
    def stop(self, status: str | None = None, timeout: float = 30.0) -> None: ...
    def at_exit(self, crashed: bool) -> None: ...
    def after_fork_in_child(self) -> None: ...


_open: set[_Writer] = set()  # writers not stopped yet, held strongly
_finalizer_pid: int | None = None  # the process whose multiprocessing finalizer is made
_sigterm_installed = False
_previous_sigterm: Any = None


def register(writer: _Writer) -> None:
    _open.add(writer)


def unregister(writer: _Writer) -> None:
    _open.discard(writer)


def _writers() -> list[_Writer]:
    return list(_open)


@atexit.register
def _at_exit() -> None:
    """Write what is queued. An uncaught exception marks the run crashed, else finished."""
    crashed = getattr(sys, "last_value", None) is not None or getattr(sys, "last_exc", None)
    for writer in _writers():
        try:
            writer.at_exit(bool(crashed))
        except Exception:
            pass


def _after_fork_in_child() -> None:
    global _finalizer_pid
    _finalizer_pid = None
    for writer in _writers():
        try:
            writer.after_fork_in_child()
        except Exception:
            pass


os.register_at_fork(after_in_child=_after_fork_in_child)


def thread_started() -> None:
    """A writer thread started in this process: in a multiprocessing child, have its exit
    (`os._exit` after `util._exit_function`) write what is queued."""
    global _finalizer_pid
    util = sys.modules.get("multiprocessing.util")
    if util is None or _finalizer_pid == os.getpid():
        return
    _finalizer_pid = os.getpid()
    try:
        util.Finalize(None, _at_exit, exitpriority=50)
    except Exception:
        pass


# -- SIGTERM -------------------------------------------------------------------------------------


def install_sigterm() -> None:
    """Install the SIGTERM handler once, from the main thread, over SIG_DFL or a Python one."""
    global _sigterm_installed, _previous_sigterm
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    try:
        previous = signal.getsignal(signal.SIGTERM)
        if previous is signal.SIG_IGN or previous is None:
            return  # ignored on purpose, or a handler set outside Python: leave it alone
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError, AttributeError):
        return
    _previous_sigterm = previous
    _sigterm_installed = True


def _on_sigterm(signum: int, frame: Any) -> None:
    deadline = time.monotonic() + SIGTERM_FLUSH_S
    previous = _previous_sigterm
    if callable(previous):
        for writer in _writers():
            writer.flush(max(0.0, deadline - time.monotonic()))
        previous(signum, frame)
        return
    # The default action follows: the process dies of the signal. Write what is queued and
    # leave the run open first.
    for writer in _writers():
        writer.stop(None, timeout=max(0.0, deadline - time.monotonic()))
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
