"""The read side: runs, their config, metric series and rollouts, as plain dataclasses.

The only module that reads SQL. Everything one page needs is read inside one transaction,
so a page never mixes two moments of a run that is still being written.

Nothing in the file is trusted: another program may have written any type into any column
(SQLite lets it), text that is not UTF-8, JSON nested thousands deep, times in nanoseconds.
What the dataclasses below hold is what they say: a time is None or Unix seconds a page can
show, text is `str` (bad bytes decoded with U+FFFD), a step is an int (rows whose step is not
are left out, and `RunData.notices` says so). The checks are made in SQL or once per run, so
reading a big run costs what it did.
"""

from tviz.store.data import (
    MAX_CONFIG_DEPTH,
    MAX_TIME,
    QUIET_AFTER_S,
    LongText,
    Rollout,
    RunData,
    RunNotFound,
    RunSummary,
    Series,
    StoreError,
    Trajectory,
)
from tviz.store.figures import GroupFigures
from tviz.store.reader import Store

__all__ = [
    "MAX_CONFIG_DEPTH",
    "MAX_TIME",
    "QUIET_AFTER_S",
    "GroupFigures",
    "LongText",
    "Rollout",
    "RunData",
    "RunNotFound",
    "RunSummary",
    "Series",
    "Store",
    "StoreError",
    "Trajectory",
]
