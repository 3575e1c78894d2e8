"""The log calls' queue to the writer thread, counted in bytes, with backpressure.

A log call puts its op here with an estimate of the memory it holds (`estimate_*`: a few
microseconds, never a deep walk). The bytes stay counted until the writer has committed the op,
so what the queue holds plus what the writer keeps for a retry never passes `limit` (one op
alone may). A call that would pass it waits for the writer:

- the database takes data (the writer commits): the call waits as long as that takes, and
  nothing is lost. A program that logs faster than the disk writes runs at the disk's pace.
- the database cannot take data (the writer's last try failed, it has waited more than a second
  for the write lock, or it has made no progress for `STALL_S`): after at most `WAIT_S` the call
  is refused, and so is every call past the limit after it, at once, until the writer commits
  again. The writer warns once; `flush()` then returns False.

Flush and stop markers bypass the limit. The lock is reentrant: a signal handler that flushes
may run while the interrupted thread holds it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Backlog", "estimate_metrics", "estimate_rollouts", "estimate_text"]

# How long a call may wait for room while the database cannot take data.
WAIT_S = 1.0
# Waiting for the write lock longer than this counts as "cannot take data".
LOCK_WAIT_S = 1.0
# No op written for this long: the disk hangs (a network mount gone away).
STALL_S = 10.0


class Backlog:
    """Ops on their way to the writer thread, and the bytes of those not yet committed."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, int(limit))
        self.items: queue.SimpleQueue[tuple[tuple, int]] = queue.SimpleQueue()
        self._lock = threading.RLock()
        self._room = threading.Condition(self._lock)
        self.held = 0  # bytes of ops accepted and not yet committed or dropped
        self.refused = 0  # calls refused since the start
        self.refusing = False  # the last call past the limit was refused
        # The writer's side of the story, read by callers waiting for room.
        self.progress = 0  # bumped for every op the writer writes or drops
        self.trouble: str | None = None  # why the last write failed; None when it worked
        self.locking_since: float | None = None  # when the writer began waiting for the lock
        self.alive = True  # False once the writer thread is gone

    # -- callers

    def put(self, op: tuple, nbytes: int) -> bool:
        """Queue `op`; False if it was refused (the database cannot take data, no room)."""
        with self._lock:  # an op of no bytes (the run, its end) never waits
            if nbytes and self.held + nbytes > self.limit and not self._wait_for_room(nbytes):
                self.refused += 1
                return False
            self.held += nbytes
        self.items.put((op, nbytes))
        return True

    def put_marker(self, op: tuple) -> None:
        """A flush or stop marker: never waits, holds no bytes."""
        self.items.put((op, 0))

    def _wait_for_room(self, nbytes: int) -> bool:
        if self.refusing and not self._healthy(time.monotonic()):
            return False  # refused at once until the writer commits again
        start = seen_at = time.monotonic()
        seen = self.progress
        while self.held and self.held + nbytes > self.limit:  # one op alone may pass it
            self._room.wait(0.05)
            now = time.monotonic()
            if self.progress != seen:
                seen, seen_at = self.progress, now
            elif now - start >= WAIT_S and not self._healthy(now, seen_at):
                self.refusing = True
                return False
        self.refusing = False
        return True

    def why(self) -> str:
        """Why the database cannot take data now, for a person."""
        if not self.alive:
            return "the writer thread has stopped"
        if self.trouble is not None:
            return self.trouble
        if self.locking_since is not None:
            waited = time.monotonic() - self.locking_since
            return f"another process has held the write lock for {waited:.1f} s"
        return f"no log call written for {STALL_S:g} s"

    def _healthy(self, now: float, progress_at: float | None = None) -> bool:
        if not self.alive or self.trouble is not None:
            return False
        if self.locking_since is not None and now - self.locking_since > LOCK_WAIT_S:
            return False
        return progress_at is None or now - progress_at < STALL_S

    # -- the writer

    def take(self, timeout: float | None, max_bytes: int) -> list[tuple[tuple, int]]:
        """What is waiting, up to about `max_bytes` (at least one op); waits up to `timeout`."""
        try:
            first = self.items.get(timeout=timeout)
        except queue.Empty:
            return []
        batch = [first]
        size = first[1]
        while size < max_bytes:
            try:
                item = self.items.get_nowait()
            except queue.Empty:
                break
            batch.append(item)
            size += item[1]
        return batch

    def done(self, nbytes: int, ops: int) -> None:
        """A transaction worked: `ops` ops holding `nbytes` are written (or were dropped)."""
        with self._lock:
            self.held = max(0, self.held - nbytes)
            self.progress += ops
            self.trouble = None
            self._room.notify_all()

    def failed(self, why: str) -> None:
        with self._lock:
            self.trouble = why
            self._room.notify_all()


# -- estimates: what an op holds in memory, cheaply --------------------------------------------

_BASE = 200  # the op tuple, its dict, the timestamp


def estimate_metrics(metrics: Mapping[str, Any]) -> int:
    """A metrics op: a dict of short names and numbers (about 120 bytes an entry)."""
    return _BASE + 120 * len(metrics)


def estimate_text(text: Any) -> int:
    return _BASE + (len(text) if isinstance(text, str) else 256)


def estimate_rollouts(rollouts: Iterable[Mapping[str, Any]]) -> int:
    """A rollouts op: texts by their length, lists by their length, arrays by their bytes."""
    total = _BASE
    for rollout in rollouts:
        total += 64
        for key, value in rollout.items():
            if key == "trajectories":
                for traj in value:
                    total += 64
                    for item in traj.values():
                        total += _size(item)
            else:
                total += _size(value)
    return total


def _size(value: Any) -> int:
    """About what `value` holds, looking one level down at most."""
    kind = type(value)
    if kind is str:
        return 50 + len(value)
    if kind is list or kind is tuple:
        if not value:
            return 56
        first = value[0]
        # A list of numbers: 8 bytes a slot and 24-32 an object. Of texts or dicts (turns):
        # the first one, times the length.
        per = 32 if type(first) in (float, int) else max(32, _size(first))
        return 56 + per * len(value)
    if kind is dict:
        return 64 + sum(50 + _size_flat(v) for v in value.values())
    nbytes = getattr(value, "nbytes", None)  # numpy arrays, torch tensors
    if isinstance(nbytes, int):
        return 112 + nbytes
    return 32


def _size_flat(value: Any) -> int:
    kind = type(value)
    if kind is str:
        return 50 + len(value)
    if kind is list or kind is tuple:
        return 56 + 32 * len(value)
    return 32
