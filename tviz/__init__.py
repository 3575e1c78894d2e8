"""tviz: see your RL training runs. Log to SQLite, build self-contained HTML reports."""

__version__ = "0.3.0"

from tviz.logger import TvizLogger  # noqa: E402

__all__ = ["TvizLogger", "__version__"]
