"""The logger's surroundings: TVIZ_MODE, network file systems, tviz watch, tinker-cookbook."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

from tviz import TvizLogger, schema
from tviz.logger import TvizWarning
from tviz.mounts import mount_of, network_fs
from tviz.names import DEFAULT_PORT

ROOT = Path(__file__).resolve().parents[1]


# -- TVIZ_MODE=disabled --------------------------------------------------------------------------


def test_tviz_mode_disabled_makes_every_logger_a_no_op(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TVIZ_MODE", "disabled")
    db = tmp_path / "never" / "tviz.db"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not a word either
        with TvizLogger(db, run_name="off", config={"lr": 1}) as logger:
            logger.log_metrics({"x": 1.0}, step=0)
            logger.log_rollouts([{"trajectories": [{"reward": 1}]}], step=0)
            logger.log_long_text("k", "v")
            logger.log_summary({"y": 2})
            logger.log_hparams({"b": 2})
            assert logger.flush() is True and logger.get_logger_url() is None
        logger.log_metrics({"late": 1}, step=1)
    assert not db.exists() and not db.parent.exists()


# -- network file systems ------------------------------------------------------------------------

MOUNTS = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
/dev/nvme0n1p2 / ext4 rw,relatime 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev 0 0
nas01:/export/home /home nfs4 rw,relatime,vers=4.2,rsize=1048576 0 0
/dev/nvme1n1 /home/alice/local ext4 rw,relatime 0 0
10.0.0.5@o2ib:/scratch /scratch lustre rw,flock,lazystatfs 0 0
gpfs1 /gpfs/projects gpfs rw,relatime 0 0
//fileserver/share /mnt/my\\040share cifs rw,vers=3.0 0 0
alice@login:/data /mnt/sshfs fuse.sshfs rw,nosuid,nodev 0 0
nas01:/export/homework /homework ext4 rw 0 0
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/home/alice/runs/tviz.db", "nfs4"),
        ("/home/alice/local/tviz.db", None),  # the longest mount point wins
        ("/homework/tviz.db", None),  # a prefix of the name is no parent folder
        ("/scratch/job/tviz.db", "lustre"),
        ("/gpfs/projects/p/tviz.db", "gpfs"),
        ("/mnt/my share/tviz.db", "cifs"),  # the table writes the space as \040
        ("/mnt/sshfs/x/tviz.db", "fuse.sshfs"),
        ("/tmp/tviz.db", None),
        ("/var/tviz.db", None),
    ],
)
def test_network_file_systems_are_found_from_a_mount_table(path: str, expected: str | None):
    assert network_fs(path, MOUNTS) == expected


def test_mount_of_takes_the_last_of_two_mounts_on_one_point() -> None:
    table = "a /data ext4 rw 0 0\nnas:/d /data nfs rw 0 0\n"
    assert mount_of("/data/x", table) == ("/data", "nfs")


def test_on_a_network_file_system_the_journal_is_not_wal(tmp_path: Path) -> None:
    table = f"/dev/sda1 / ext4 rw 0 0\nnas:/export {tmp_path} nfs rw 0 0\n"
    db = tmp_path / "tviz.db"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        conn = schema.connect(db, mount_table=table)
        again = schema.connect(db, mount_table=table)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert again.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    again.close()
    said = [str(w.message) for w in caught if issubclass(w.category, TvizWarning)]
    assert len(said) == 1 and "nfs" in said[0] and "WAL" in said[0]
    assert not Path(f"{db}-wal").exists()
    # Where the file system is local, WAL as always.
    local = schema.connect(tmp_path / "local.db", mount_table="/dev/sda1 / ext4 rw 0 0\n")
    assert local.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    local.close()


def test_a_wal_file_moved_to_a_network_file_system_leaves_wal(tmp_path: Path) -> None:
    db = tmp_path / "tviz.db"
    schema.connect(db, mount_table="/dev/sda1 / ext4 rw 0 0\n").close()
    probe = sqlite3.connect(db)
    assert probe.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    probe.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conn = schema.connect(db, mount_table=f"nas:/x {tmp_path} nfs4 rw 0 0\n")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


# -- get_logger_url ------------------------------------------------------------------------------


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as tviz watch's server does
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_no_url_without_a_tviz_watch_and_asked_only_once(db_path: Path) -> None:
    if not _port_free(DEFAULT_PORT):
        pytest.skip(f"port {DEFAULT_PORT} is in use here")
    logger = TvizLogger(db_path, run_name="no-watch", strict=True)
    start = time.perf_counter()
    assert logger.get_logger_url() is None
    assert time.perf_counter() - start < 1.0
    start = time.perf_counter()
    assert logger.get_logger_url() is None
    assert time.perf_counter() - start < 0.001  # cached
    logger.close()


@pytest.fixture
def watch(tmp_path: Path):
    """`tviz watch` of tmp_path/watched.db on the default port, as a person starts it."""
    if not _port_free(DEFAULT_PORT):
        pytest.skip(f"port {DEFAULT_PORT} is in use here")
    db = tmp_path / "watched.db"
    TvizLogger(db, run_name="first", strict=True).close()
    code = "import sys; from tviz.cli import main; sys.argv[0] = 'tviz'; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "watch", "--db", str(db), "--out", str(tmp_path / "site")]
        + ["--port", str(DEFAULT_PORT)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while _port_free(DEFAULT_PORT) or not (tmp_path / "site" / "index.html").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.1)
    yield db
    proc.terminate()
    proc.wait(timeout=30)


def test_a_url_where_tviz_watch_serves_this_database(watch: Path, tmp_path: Path) -> None:
    logger = TvizLogger(watch, run_name="served")
    url = logger.get_logger_url()
    assert url is not None and url.startswith(f"http://127.0.0.1:{DEFAULT_PORT}/runs/")
    assert url.endswith(f"-{logger.run_id}.html")
    logger.close()
    other = TvizLogger(tmp_path / "elsewhere" / "other.db", run_name="not-served")
    assert other.get_logger_url() is None  # a watch of another database: no link
    other.close()


def test_the_version_path_is_the_one_tviz_watch_serves() -> None:
    from tviz.cookbook_api import VERSION_PATH
    from tviz.watch.inject import VERSION_PATH as SERVED

    assert VERSION_PATH == SERVED


# -- tinker-cookbook's ml_log.Logger -------------------------------------------------------------

needs_cookbook = pytest.mark.skipif(
    importlib.util.find_spec("tinker_cookbook") is None,
    reason="tinker-cookbook is not installed (these tests need only its ml_log, chz and rich)",
)


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_importing_tviz_imports_neither_torch_nor_tinker_cookbook() -> None:
    done = _python(
        """
        import sys
        import tviz
        from tviz import TvizLogger
        heavy = [m for m in ("torch", "tinker_cookbook", "tinker", "chz", "rich", "wandb")
                 if m in sys.modules]
        print(heavy)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@needs_cookbook
@pytest.mark.parametrize("first", ["tviz", "cookbook"])
def test_a_tviz_logger_is_an_ml_log_logger_whichever_is_imported_first(
    tmp_path: Path, first: str
) -> None:
    done = _python(
        """
        import sys
        if sys.argv[2] == "tviz":
            from tviz import TvizLogger
            assert "tinker_cookbook" not in sys.modules
            from tinker_cookbook.utils import ml_log
        else:
            from tinker_cookbook.utils import ml_log
            from tviz import TvizLogger
        logger = TvizLogger(sys.argv[1], strict=True)
        print(isinstance(logger, ml_log.Logger), issubclass(TvizLogger, ml_log.Logger),
              ml_log.Logger in TvizLogger.__mro__)
        logger.close()
        """,
        str(tmp_path / "t.db"),
        first,
    )
    assert done.returncode == 0, done.stderr
    # A real subclass when ml_log came first, a registered one when tviz did.
    assert done.stdout.split() == ["True", "True", "True" if first == "cookbook" else "False"]


@needs_cookbook
def test_next_to_setup_logging_the_config_is_the_cookbooks_config_json(tmp_path: Path) -> None:
    done = _python(
        """
        import json, sys
        import chz
        from tinker_cookbook.utils import ml_log
        from tviz import TvizLogger

        @chz.chz
        class Builder:
            batch_size: int = 128
            renderer_name: str = "llama3"
            def __call__(self):
                return None

        @chz.chz
        class Config:
            model_name: str = "meta-llama/Llama-3.1-8B"
            learning_rate: float = 4e-5
            dataset_builder: Builder = chz.field(default_factory=Builder)
            log_path: str = sys.argv[1]

        config = Config()
        ml_logger = ml_log.setup_logging(log_dir=sys.argv[1], config=config,
                                         do_configure_logging_module=False)
        tviz_logger = TvizLogger(sys.argv[2], strict=True)
        ml_logger.loggers.append(tviz_logger)
        ml_logger.log_hparams(config)
        ml_logger.log_metrics({"env/all/reward/total": 0.5}, step=0)
        ml_logger.close()
        """,
        str(tmp_path / "log"),
        str(tmp_path / "tviz.db"),
    )
    assert done.returncode == 0, done.stderr
    config_json = json.loads((tmp_path / "log" / "config.json").read_text())
    conn = sqlite3.connect(tmp_path / "tviz.db")
    stored = json.loads(conn.execute("SELECT config FROM runs").fetchone()[0])
    conn.close()
    assert stored == config_json
    assert stored["dataset_builder"] == {"batch_size": 128, "renderer_name": "llama3"}
