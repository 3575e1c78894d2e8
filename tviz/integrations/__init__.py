"""Ways in from training frameworks, each in its own module and imported only when used:

- `tviz.integrations.trl`: `TvizCallback` for Hugging Face TRL's `GRPOTrainer`.

Importing `tviz` imports none of them, so neither TRL nor torch is needed to log or build.
"""
