"""Is a path on a network file system? SQLite's WAL mode is not safe there.

WAL keeps its index in shared memory (the `-shm` file, mapped by every connection), which a
network file system does not share between machines, and its locks are often emulated or
missing: two machines writing one WAL file corrupt it (https://sqlite.org/wal.html). HPC home
and project folders are mostly NFS, Lustre or GPFS. On those tviz uses a rollback journal, and
`tviz watch` polls, since file events do not cross machines either.

The mount table is `/proc/self/mounts` (Linux); elsewhere nothing is detected.
"""

from __future__ import annotations

import os
import re

__all__ = ["NETWORK_FS_TYPES", "mount_of", "network_fs"]

MOUNTS_FILE = "/proc/self/mounts"

# File system types (the third field of a mount table line) that live on another machine.
NETWORK_FS_TYPES = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "lustre",
        "gpfs",
        "9p",
        "ceph",
        "glusterfs",
        "beegfs",
        "afs",
        "openafs",
        "ncpfs",
        "coda",
        "panfs",
        "orangefs",
        "pvfs2",
        "wekafs",
        "davfs",
        "fuse.sshfs",
        "fuse.ceph",
        "fuse.ceph-fuse",
        "fuse.cephfs",
        "fuse.glusterfs",
        "fuse.s3fs",
        "fuse.gcsfuse",
        "fuse.rclone",
        "fuse.juicefs",
        "fuse.davfs2",
        "fuse.beegfs",
    }
)

_ESCAPE = re.compile(r"\\([0-7]{3})")  # the mount table writes a space as \040


def _unescape(field: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def mount_of(path: str | os.PathLike[str], mounts: str) -> tuple[str, str] | None:
    """(mount point, file system type) of the mount that holds `path`, from a mount table's
    text: the longest mount point that is `path` or one of its parents (the last mounted, if
    two share it). `path` should be absolute and resolved."""
    target = os.path.normpath(os.fspath(path))
    best: tuple[str, str] | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point, fstype = os.path.normpath(_unescape(fields[1])), fields[2]
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, fstype)
    return best


def network_fs(path: str | os.PathLike[str], mounts: str | None = None) -> str | None:
    """The network file system type that holds `path` ("nfs4", "lustre", ...), else None.

    `mounts` is a mount table's text; by default this process's (`/proc/self/mounts`). The path
    need not exist yet: its existing parents decide (symlinks resolved).
    """
    if mounts is None:
        try:
            with open(MOUNTS_FILE, encoding="utf-8", errors="replace") as f:
                mounts = f.read()
        except OSError:  # not Linux: nothing known
            return None
    found = mount_of(os.path.realpath(os.fspath(path)), mounts)
    if found is None:
        return None
    fstype = found[1].lower()
    if fstype in NETWORK_FS_TYPES or fstype.startswith(("nfs", "fuse.sshfs")):
        return fstype
    return None
