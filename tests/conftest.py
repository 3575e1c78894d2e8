"""Fixtures shared by the test modules: real SQLite files in temporary folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def fixture_path(name: str) -> Path:
    """A file of ../shared/fixtures (a clone's sibling) or, failing that, tests/fixtures."""
    for base in (SHARED / "fixtures", FIXTURES):
        if (base / name).exists():
            return base / name
    pytest.skip(f"fixture {name} not found in {SHARED / 'fixtures'} or {FIXTURES}")


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
