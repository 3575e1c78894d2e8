"""How tviz tells a training loop that something kept it from writing: a TvizWarning."""

from __future__ import annotations

import warnings

__all__ = ["TvizWarning", "warn"]


class TvizWarning(UserWarning):
    """Something kept tviz from writing; the training loop goes on."""


def warn(message: str) -> None:
    """A TvizWarning for the training loop, which it never breaks (also with `-W error`)."""
    try:
        warnings.warn(f"tviz: {message}", TvizWarning, stacklevel=3)
    except Exception:  # warnings turned into errors must not break the loop
        pass
