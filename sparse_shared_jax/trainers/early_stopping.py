"""Early stopping by checkpoint: a run's best validation step, kept on disk.

A trainer that validates during training offers each validated state to a
`BestStep`; the best one so far (by worst-group accuracy, ties by average
accuracy, then the earlier step) is saved as the only checkpoint of
`<run>/best`, with its scores in `<run>/best/selection.json`. The record
survives interruptions, so a resumed run goes on comparing against it, and
`read_selection` tells which step to restore afterwards.
"""

from __future__ import annotations

import json
import os

from sparse_shared_jax import atomic_files, checkpoints, parallel

# Inside a run's directory: the best state and its scores.
BEST_DIR = "best"
SELECTION_FILE = "selection.json"
# The scores compared, most important first.
_ORDER = ("worst_group", "average")


def read_selection(workdir: str) -> dict | None:
    """The record of a run's best validation step so far, or None:
    {'step', 'worst_group', 'average'}."""
    path = os.path.join(workdir, BEST_DIR, SELECTION_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


class BestStep:
    """The best validated state of the run in `workdir` (module doc)."""

    def __init__(self, workdir: str):
        self.directory = os.path.join(workdir, BEST_DIR)
        # Every process holds the same record (it reads the same file and is
        # offered the same scores), so all take the same decision to save.
        self.selection = read_selection(workdir)

    def offer(self, step: int, scores: dict[str, float], state) -> None:
        """Keeps `state` (at `step`) if its `scores` beat the best so far."""
        if self.selection is not None and tuple(scores[k] for k in _ORDER) <= tuple(
            self.selection[k] for k in _ORDER
        ):
            return
        keeper = checkpoints.Checkpointer(self.directory, max_to_keep=1)
        try:
            keeper.save(step, state)
        finally:
            keeper.close()
        self.selection = {"step": step, **{k: scores[k] for k in _ORDER}}
        if parallel.is_main_process():
            atomic_files.write_json(
                os.path.join(self.directory, SELECTION_FILE), self.selection
            )


def refuse_unselected(workdir: str, every_steps: int) -> None:
    """Refuses a run trained past its first validation step without
    early stopping: its best step cannot be known afterwards.

    Raises:
      ValueError: naming the run and the two ways out.
    """
    directory = os.path.join(workdir, checkpoints.CHECKPOINT_DIR)
    if not every_steps or read_selection(workdir) or not os.path.isdir(directory):
        return
    steps = [int(name) for name in os.listdir(directory) if name.isdigit()]
    if steps and max(steps) >= every_steps:
        raise ValueError(
            f"The baseline run in {workdir} was trained to step {max(steps)} "
            "without early stopping (it has no "
            f"{os.path.join(BEST_DIR, SELECTION_FILE)}), so its best validation "
            "step is unknown. Delete that directory to retrain it with early "
            "stopping, or set config.transfer.erm_eval_every_steps=0 to use its "
            "last step."
        )
