"""Read side for importers that bring a run up to date: which (step, eval set) groups a run
holds, and the provenance an importer left in them.

Eval rollouts themselves are read with the rest of a run (`Store.load_run`, whose
`RunData.eval_rollouts` holds them apart from the training `rollouts`).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tviz.store.cells import _json
from tviz.store.reader import Store

__all__ = ["rollout_sources"]


def rollout_sources(store: Store, run_id: str, key: str) -> dict[tuple[int, str | None], Any]:
    """(step, eval name or None for training) -> the rollout extras value `key` of that
    step's groups (None where they have none): what an importer stamped them with."""
    run_key = store._key(run_id)

    def read(conn: sqlite3.Connection) -> dict[tuple[int, str | None], Any]:
        rows = conn.execute(
            "SELECT step, CAST(eval_name AS TEXT),"
            " max(CASE WHEN json_valid(extras) THEN json_extract(extras, '$.' || ?) END)"
            " FROM rollouts WHERE run_id = CAST(? AS TEXT) AND typeof(step) = 'integer'"
            " GROUP BY step, eval_name",
            (f'"{key}"', run_key),
        )
        return {(step, name): _json(value) for step, name, value in rows}

    return store._read(read)
