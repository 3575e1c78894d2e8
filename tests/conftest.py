"""Fixtures shared by the test modules: real SQLite files in temporary folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_path(name: str) -> Path:
    """A file or folder of tests/fixtures (a tviz 0.2.3 database, a tinker-cookbook run)."""
    path = FIXTURES / name
    assert path.exists(), f"missing test fixture {path}"
    return path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "tviz.db"


@pytest.fixture
def legacy_db(tmp_path: Path) -> Path:
    """A writable copy of the database written by tviz 0.2.3."""
    dest = tmp_path / "legacy.db"
    shutil.copyfile(fixture_path("legacy-0.2.3-text.db"), dest)
    dest.chmod(0o644)
    return dest
