"""Ways into tviz from other tools: Tinker objects (`tinker`) and cookbook run dirs (`cookbook`).

Nothing here imports tinker or tinker_cookbook: importing them pulls in torch.
"""

from tviz.adapters.tinker import (
    from_tinker_batch,
    from_tinker_trajectory,
    from_tinker_trajectory_group,
    model_input_text,
)

__all__ = [
    "from_tinker_batch",
    "from_tinker_trajectory",
    "from_tinker_trajectory_group",
    "model_input_text",
]
