"""Where a run's scalars go: JSON lines always, TensorBoard when available.

`<workdir>/scalars.jsonl` holds one ``{"step": s, "name": value, ...}`` line
per write and is what the training-curve pictures are drawn from. TensorBoard
event files go to `<workdir>/tensorboard` through `clu.metric_writers`, which
needs TensorFlow (``pip install -e ".[tensorboard]"``); without it the run
logs a note once and keeps the JSON lines.
"""

from __future__ import annotations

import json
import logging as std_logging
import math
import os
from collections import defaultdict

from absl import logging

from sparse_shared_jax import atomic_files

SCALARS_FILE = "scalars.jsonl"
TENSORBOARD_DIR = "tensorboard"


class _DropLibraryInfo(std_logging.Filter):
    """Drops INFO records of orbax (a dozen lines per checkpoint)."""

    def filter(self, record: std_logging.LogRecord) -> bool:
        return record.levelno >= std_logging.WARNING or "orbax" not in record.pathname


def quiet_library_logs() -> None:
    """Keeps the console to the run's own progress (for entry points)."""
    logging.get_absl_handler().addFilter(_DropLibraryInfo())


def _tensorboard_writer(logdir: str):
    """clu's TensorBoard writer, or None when TensorFlow is not installed."""
    try:
        from clu import metric_writers
    except ImportError as error:
        logging.info(
            "TensorBoard logging is off (%s); install the [tensorboard] extra "
            "to enable it. Scalars still go to %s.",
            error,
            SCALARS_FILE,
        )
        return None
    return metric_writers.SummaryWriter(logdir)


class ScalarWriter:
    """Writes scalar metrics to JSON lines and, if possible, TensorBoard."""

    def __init__(self, workdir: str, tensorboard: bool = True, enabled: bool = True):
        """Opens the writers.

        Args:
          workdir: the run's directory.
          tensorboard: also write TensorBoard event files (needs TensorFlow).
          enabled: False makes every write a no-op (processes other than 0 of
            a multi-process job).
        """
        self._enabled = enabled
        self._path = os.path.join(workdir, SCALARS_FILE)
        self._tensorboard = (
            _tensorboard_writer(os.path.join(workdir, TENSORBOARD_DIR))
            if tensorboard and enabled
            else None
        )

    @property
    def has_tensorboard(self) -> bool:
        return self._tensorboard is not None

    def drop_after(self, step: int, evaluations_at_step: bool = False) -> None:
        """Deletes the JSON-lines records after `step`, which a run resumed
        from its checkpoint at `step` logs again; with `evaluations_at_step`
        also the records at `step` without training scalars (the final
        evaluation, which a finished run rerun writes again). TensorBoard
        event files keep theirs (TensorBoard shows the latest of a step)."""
        if not self._enabled or not os.path.exists(self._path):
            return
        with open(self._path) as f:
            lines = f.readlines()

        def keep(line: str) -> bool:
            record = json.loads(line)
            if record["step"] != step or not evaluations_at_step:
                return record["step"] <= step
            return any(name.startswith("train/") for name in record)

        kept = [line for line in lines if keep(line)]
        if len(kept) < len(lines):
            atomic_files.write_text(self._path, "".join(kept))

    def write_scalars(self, step: int, scalars: dict[str, float]) -> None:
        """Appends `scalars` at `step` (non-finite values are kept as null)."""
        if not self._enabled:
            return
        record = {"step": int(step)}
        record.update(
            {k: (float(v) if math.isfinite(v) else None) for k, v in scalars.items()}
        )
        with open(self._path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tensorboard is not None:
            self._tensorboard.write_scalars(step, scalars)

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()


def read_history(workdir: str, up_to_step: int) -> dict[str, list[tuple[int, float]]]:
    """Scalar history name -> [(step, value)], from `scalars.jsonl`.

    A resumed run may have logged steps past its last checkpoint before it
    was killed; for each (name, step) the last record written wins, and steps
    after `up_to_step` are dropped.
    """
    path = os.path.join(workdir, SCALARS_FILE)
    latest: dict[str, dict[int, float]] = defaultdict(dict)
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                step = record.pop("step")
                if step <= up_to_step:
                    for name, value in record.items():
                        if value is not None:
                            latest[name][step] = value
    return {name: sorted(values.items()) for name, values in latest.items()}
