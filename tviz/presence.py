"""The `writers` table: which processes write a run now (schema.V4_DDL).

A writer adds its row in its first transaction on a file, refreshes `heartbeat_ts` with its
commits (at most every HEARTBEAT_S / 10) and every HEARTBEAT_S when idle, and removes it when it
stops. A row is a live writer while its heartbeat is younger than STALE_S and, when it is of
this host, its process exists (not a zombie): so a writer killed with SIGKILL on this machine is
known dead at once, one on another machine after STALE_S. A row found dead is removed.

What it decides: a writer that finds no other live writer of its run (of the same rank) is a
resume, and replaces the rollouts of the steps it logs again; one that finds one (a rank, a
forked child, a second process given the same run_id) never deletes anything. A resume within
STALE_S of a crash on another machine is taken for a second writer: it duplicates the groups of
the steps it logs again rather than risk deleting a live writer's.
"""

from __future__ import annotations

import os
import sqlite3
import time

__all__ = ["HEARTBEAT_S", "STALE_S", "alive", "beat", "join", "leave"]

HEARTBEAT_S = 30.0
STALE_S = 120.0
HOST = os.uname().nodename if hasattr(os, "uname") else "localhost"

_INSERT = (
    "INSERT OR REPLACE INTO writers (writer_id, run_id, host, pid, rank, started_ts,"
    " heartbeat_ts) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def join(conn: sqlite3.Connection, writer_id: str, run_id: str, rank: int | None) -> bool:
    """Add this writer's row; True if another live writer of the run (same rank) has one."""
    now = time.time()
    others = conn.execute(
        "SELECT writer_id, host, pid, heartbeat_ts FROM writers"
        " WHERE run_id = ? AND COALESCE(rank, 0) = ?",
        (run_id, rank or 0),
    ).fetchall()
    live = False
    for other, host, pid, heartbeat in others:
        if other == writer_id:
            continue
        if alive(host, pid, heartbeat, now):
            live = True
        else:  # a writer that died without saying goodbye
            conn.execute("DELETE FROM writers WHERE writer_id = ?", (other,))
    conn.execute(_INSERT, (writer_id, run_id, HOST, os.getpid(), rank, now, now))
    return live


def beat(conn: sqlite3.Connection, writer_id: str, run_id: str, rank: int | None) -> None:
    """Refresh this writer's heartbeat (its row again, if another writer took it for dead)."""
    now = time.time()
    cursor = conn.execute(
        "UPDATE writers SET heartbeat_ts = ? WHERE writer_id = ?", (now, writer_id)
    )
    if cursor.rowcount == 0:
        conn.execute(_INSERT, (writer_id, run_id, HOST, os.getpid(), rank, now, now))


def leave(conn: sqlite3.Connection, writer_id: str) -> None:
    conn.execute("DELETE FROM writers WHERE writer_id = ?", (writer_id,))


def alive(host: str, pid: int, heartbeat: float | None, now: float) -> bool:
    """Whether the writer of a `writers` row still writes."""
    if heartbeat is None or now - heartbeat > STALE_S:
        return False
    if host != HOST:
        return True  # another machine's process: its heartbeat is all there is to know
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) writes no more
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True
