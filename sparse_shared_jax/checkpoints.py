"""Orbax checkpoints of the training state, and the workdir's config guard.

Checkpoints live under `<workdir>/checkpoints/<step>`; the config that made
them is kept in `<workdir>/config.json`, so a restart with an incompatible
config is refused instead of silently resuming (or overwriting) a different
experiment.
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import orbax.checkpoint as ocp
from flax.training import train_state

from sparse_shared_jax import atomic_files, configs
from sparse_shared_jax.data import benchmarks
from sparse_shared_jax.errors import CheckpointError, WorkdirError

CHECKPOINT_DIR = "checkpoints"
CONFIG_FILE = "config.json"
# Fields a restarted run may change: how long it trains, how often it logs,
# evaluates and checkpoints, how it evaluates, how arrays are laid out over
# devices, and where a real benchmark's files are (the same data elsewhere).
RESUMABLE_CHANGES = (
    "num_train_steps",
    "log_every_steps",
    "eval_every_steps",
    "eval.",
    "checkpoint.",
    "parallel.",
    "input.",
    "data.data_dir",
    "data.manual_dir",
    # Only the transfer evaluation reads these: a finished benchmark run
    # rerun with new values re-evaluates its frozen encoder (and saved ERM).
    "transfer.alphas",
    "transfer.max_examples",
    "transfer.erm_eval_every_steps",
    "transfer.erm_steps",
    "transfer.group_dro",
)


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_workdir_config(
    workdir: str, config: ml_collections.ConfigDict, write: bool = True
) -> None:
    """Records the config in a new workdir, or checks it matches the old one.

    Args:
      workdir: the run's directory.
      config: the run's config.
      write: whether to (re)write `config.json` (only one process of a
        multi-process job should).

    Raises:
      ValueError: listing the fields that differ from the config stored in
        the workdir (other than those in RESUMABLE_CHANGES).
    """
    path = os.path.join(workdir, CONFIG_FILE)
    current = json.loads(config.to_json())
    if os.path.exists(path):
        with open(path) as f:
            stored = json.load(f)
        old, new = _flatten(stored), _flatten(current)
        # A field added to the package after the run started may keep its
        # default (the old run behaved as the default does); 'trainer' was
        # added with both values, each matching how older runs were run.
        defaults = _flatten(_defaults_of(stored, with_transfer=True))
        defaults.update(trainer=new.get("trainer"))
        differing = sorted(
            key
            for key in old.keys() | new.keys()
            if old.get(key) != new.get(key)
            and not any(key.startswith(field) for field in RESUMABLE_CHANGES)
            and not (key not in old and key in defaults and new[key] == defaults[key])
        )
        if differing:
            details = "; ".join(
                f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in differing
            )
            raise WorkdirError(
                f"The workdir {workdir} holds a run with a different config "
                f"({details}). Use a new --workdir, or restore those values to "
                "resume the old run."
            )
    if write:
        record_config(workdir, config)


def record_config(workdir: str, config: ml_collections.ConfigDict) -> None:
    """Writes `config` to `workdir/config.json` (atomically)."""
    path = os.path.join(workdir, CONFIG_FILE)
    atomic_files.write_text(path, config.to_json(indent=2))


def read_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a run recorded in `workdir/config.json`.

    Fields added to the package after the run was recorded get their
    defaults (the values the run behaved as); runs recorded before
    config.trainer existed get the trainer that ran them.
    """
    with open(os.path.join(workdir, CONFIG_FILE)) as f:
        stored = json.load(f)
    return ml_collections.ConfigDict(
        _merge(_defaults_of(stored, "transfer" in stored), stored)
    )


def _defaults_of(stored: dict, with_transfer: bool) -> dict:
    """The package's current defaults for a recorded config (a dict): those
    of its benchmark, or the ground-truth ones (with the transfer section's
    if `with_transfer`)."""
    name = stored["data"]["name"]
    if name.split("/")[0] in benchmarks.BENCHMARKS:
        return configs.benchmark_config(name).to_dict()
    defaults = configs.base_config().to_dict()
    if with_transfer:
        defaults["transfer"] = configs.transfer_config(alphas=()).to_dict()
    return defaults


def _merge(defaults: dict, stored: dict) -> dict:
    """`stored`, with the keys it lacks taken from `defaults` (recursively;
    an `options` dict belongs to its dataset or model and is kept as stored)."""
    merged = dict(defaults)
    for key, value in stored.items():
        if key == "options":
            merged[key] = value
        elif isinstance(value, dict) and isinstance(defaults.get(key), dict):
            merged[key] = _merge(defaults[key], value)
        else:
            merged[key] = value
    return merged


def _saved_tree(state: train_state.TrainState) -> dict:
    return {"params": state.params, "opt_state": state.opt_state, "step": state.step}


class Checkpointer:
    """Saves and restores the training state with an orbax CheckpointManager."""

    def __init__(self, workdir: str, max_to_keep: int):
        self.directory = os.path.join(os.path.abspath(workdir), CHECKPOINT_DIR)
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        )

    def latest_step(self) -> int | None:
        """The newest complete checkpoint's step, or None."""
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        """The steps of every complete checkpoint kept."""
        return list(self._manager.all_steps())

    def save(self, step: int, state: train_state.TrainState) -> None:
        """Saves `state` as checkpoint `step` and waits until it is on disk."""
        self._manager.save(step, args=ocp.args.StandardSave(_saved_tree(state)))
        self._manager.wait_until_finished()

    def restore(
        self, step: int, state: train_state.TrainState
    ) -> train_state.TrainState:
        """Restores checkpoint `step` into a state with the same structure.

        Raises:
          ValueError: naming the checkpoint if it is unreadable or does not
            match the model and optimiser of `state`.
        """
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, _saved_tree(state))
        try:
            restored = self._manager.restore(
                step, args=ocp.args.StandardRestore(target)
            )
        except Exception as error:  # orbax raises many types for bad files
            raise CheckpointError(
                f"Cannot restore checkpoint {os.path.join(self.directory, str(step))}"
                f" ({type(error).__name__}: {error}). It is corrupt or was written "
                "by a different model/optimiser; delete that step directory to "
                "resume from an older checkpoint, or use a new --workdir."
            ) from error
        return state.replace(
            params=restored["params"],
            opt_state=restored["opt_state"],
            step=restored["step"],
        )

    def close(self) -> None:
        self._manager.close()
