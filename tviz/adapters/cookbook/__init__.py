"""Import a tinker-cookbook run directory (what `tinker_cookbook.rl.train` writes) into tviz.

`tinker_cookbook.rl.train.main` builds its own loggers, so many users cannot put a TvizLogger in
the loop. This reads what the cookbook already writes:

- `config.json`: the run's config.
- `metrics.jsonl`: one JSON object per line, `{"step": N, ...}` or, for `log_summary`, without a
  step. A resumed run may repeat steps: the last value written wins.
- `iteration_NNNNNN/train_rollout_summaries.jsonl`: one record per trajectory (rewards, per-step
  stats, metrics and logs, no text), written when `rollout_json_export` is on.
- `iteration_NNNNNN/train_logtree.json`: the logtree of the first `num_groups_to_log` groups,
  with the conversations' text.
- `checkpoints.jsonl`: a `"final"` entry marks a finished run.

Importing is idempotent and incremental: the run id is derived from the directory's absolute
path, metric values already in the database are not written again, and iterations whose
rollouts are already there are skipped. So a directory still being written can be imported
again later to add what is new, and importing twice adds nothing.

One module a job: `files` reads the folder's files, `logtree` parses a logtree's groups,
`rollouts` builds the `log_rollouts` dicts and matches the logged text to the summaries' groups,
`result` holds what an import reports. `importer.import_cookbook_run` runs an import in three
steps: read (`files.read_run_folder`), plan what is new (`plan`), write it through a `TvizLogger`
(`write`).
"""

from tviz.adapters.cookbook.files import read_metrics
from tviz.adapters.cookbook.importer import import_cookbook_run, run_id_for
from tviz.adapters.cookbook.result import CookbookImportError, ImportResult
from tviz.adapters.cookbook.rollouts import read_iteration_rollouts

__all__ = [
    "CookbookImportError",
    "ImportResult",
    "import_cookbook_run",
    "read_iteration_rollouts",
    "read_metrics",
    "run_id_for",
]
