"""Command-line entry point.

    python -m sparse_shared_jax.main --config=experiments/<name>.py[:variant] \
        --workdir=DIR [--config.<field>=<value> ...]

The config is locked: overriding a field that does not exist is an error.
"""

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from sparse_shared_jax import scalar_logs, train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Experiment config file (experiments/*.py).", lock_config=True
)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    scalar_logs.quiet_library_logs()
    logging.info("JAX devices: %s", jax.devices())
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
    app.run(main)
