"""Command-line entry point.

    python -m sparse_shared_jax.main --config=experiments/<name>.py[:variant] \
        --workdir=DIR [--config.<field>=<value> ...]

The config is locked: overriding a field that does not exist is an error.
`train.train_and_evaluate` runs it with the trainer config.trainer names
(sparse_shared_jax/trainers: ground-truth data, a real benchmark's labels).

Multi-process jobs run the same command on every process, plus either
``--multihost`` (TPU pods, SLURM: the platform's environment says who is who)
or ``--coordinator_address=HOST:PORT --num_processes=N --process_id=I``.
"""

import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from sparse_shared_jax import parallel, scalar_logs, train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Experiment config file (experiments/*.py).", lock_config=True
)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
flags.DEFINE_bool(
    "multihost",
    False,
    "Join a multi-process job described by the platform's environment "
    "(jax.distributed.initialize() auto-detection: TPU pods, SLURM, Open MPI).",
)
flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0 (explicit multi-process)."
)
flags.DEFINE_integer("num_processes", None, "Processes in the job (explicit launch).")
flags.DEFINE_integer("process_id", None, "This process's index (explicit launch).")
flags.DEFINE_integer(
    "distributed_timeout", 300, "Seconds to wait for the other processes."
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    scalar_logs.quiet_library_logs()
    parallel.initialize_distributed(
        FLAGS.coordinator_address,
        FLAGS.num_processes,
        FLAGS.process_id,
        auto=FLAGS.multihost,
        timeout_s=FLAGS.distributed_timeout,
    )
    logging.info("JAX devices: %s", jax.devices())
    try:
        train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    except KeyboardInterrupt:
        print(
            "Interrupted. Rerun the same command to resume from the latest "
            f"checkpoint in {FLAGS.workdir}/checkpoints.",
            flush=True,
        )
        sys.exit(130)


if __name__ == "__main__":
    app.run(main)
