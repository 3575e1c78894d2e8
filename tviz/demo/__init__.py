"""A realistic simulated RL run: what `tviz demo` shows, and the data the tests and benchmarks use.

`simulate_run` logs a GRPO-style run through a TvizLogger as tinker-cookbook would: math word
problems, step-by-step answers that get right more often as training goes on, rewards with the
cookbook's formula (correct answer 1, wrong 0, bad format -0.1), token logprobs, the cookbook's
metric names (`env/all/reward/total`, `env/all/by_group/frac_mixed`, `optim/entropy`,
`time/total`, ...), some multi-turn calculator episodes, groups whose samples all got the same
reward (tests can add model text that tries to break out of a web page: `inject`). With
`modality="vision"` it simulates a geo-guessing run instead: small generated PNG images, true and
predicted coordinates and the distance between them.

Everything comes from one `random.Random(seed)`: the same arguments give the same data.

- `policy`: the simulated model both runs share (its skill over training, its tokens).
- `text`: the math run's groups; `vision`: the geo-guessing run's groups and their images.
- `run`: `simulate_run`, a run's config and its metrics step by step on a simulated clock.
- `build`: `write_demo_db` (the demo runs in a new database) and `build_demo` (`tviz demo`).
"""

from tviz.demo.build import DEMO_DB_NAME, DemoResult, DemoSite, build_demo, write_demo_db
from tviz.demo.run import simulate_run
from tviz.demo.vision import write_png

__all__ = [
    "DEMO_DB_NAME",
    "DemoResult",
    "DemoSite",
    "build_demo",
    "simulate_run",
    "write_demo_db",
    "write_png",
]
