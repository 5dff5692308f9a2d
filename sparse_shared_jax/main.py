"""Command-line entry point.

    python -m sparse_shared_jax.main --config=experiments/<name>.py[:argument] \
        --workdir=DIR [--config.<field>=<value> ...]

`train.train_and_evaluate` runs the config with the trainer config.trainer
names (sparse_shared_jax/trainers). The config is locked: overriding a field
that does not exist is an error, which names the closest field. A mistake in
the input (a config value, a missing dataset, another run's workdir, a
corrupt checkpoint) prints one message and exits with status 2 (--debug
shows the traceback); SIGINT (Ctrl-C) or SIGTERM (preemption) stops after
the current step, saves a checkpoint and prints the command that resumes.

Multi-process jobs run the same command on every process, plus either
``--multihost`` (TPU pods, SLURM: the platform's environment says who is who)
or ``--coordinator_address=HOST:PORT --num_processes=N --process_id=I``.
"""

import glob
import os
import shlex
import signal
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from sparse_shared_jax import configs, errors, loop, parallel, scalar_logs, train

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
flags.DEFINE_bool("debug", False, "Show the traceback of input errors too.")
flags.DEFINE_bool(
    "show_config", False, "Print every field of the config (after overrides); exit."
)

_USAGE = """\
usage: python -m sparse_shared_jax.main --config=experiments/<name>.py[:argument]
           --workdir=DIR [--config.<field>=<value> ...] [flags]

Trains and evaluates the experiment a config file describes; rerunning the
same command resumes from the latest checkpoint in DIR.

Experiments ({directory}):
{experiments}
The argument after ':' is a comma-separated list of: an ablation (full,
sparse_only, share_only, erm), rho=<float>, share_variant=<name>,
share_placement=<outer|inner>, share_weight=<float>, alpha=<float>,
seed=<int>, steps=<int>, or any field as <section>.<field>=<value>
(e.g. experiments/shapes3d.py:erm,seed=2).

Every field: --show_config prints them with their values; their meaning is
in the README's "Config reference" and in sparse_shared_jax/configs.py.

Flags:
  --workdir=DIR          where checkpoints, logs and results go
  --config.<field>=V     override one field (e.g. --config.num_train_steps=100)
  --show_config          print the config and exit
  --debug                show tracebacks of input errors
  --multihost, --coordinator_address, --num_processes, --process_id,
  --distributed_timeout  multi-process jobs (README, "Multi-device training")
"""


def _usage() -> str:
    directory = "experiments"
    lines = []
    for path in sorted(glob.glob(os.path.join(directory, "*.py"))):
        with open(path) as f:
            source = f.read()
        first = (
            source.split('"""')[1].strip().splitlines()[0] if '"""' in source else ""
        )
        lines.append(f"  {os.path.basename(path):22s} {first}")
    if not lines:
        lines.append("  (run from the repository root to list experiments/)")
    return _USAGE.format(directory=f"{directory}/", experiments="\n".join(lines))


def _config_path(argv) -> str | None:
    for arg in argv:
        if arg.startswith("--config="):
            return arg.split("=", 1)[1].split(":", 1)[0]
    return None


def _flag_error(argv, error: Exception) -> str:
    """A one-line account of a command-line error, naming a misspelt field."""
    path = _config_path(argv)
    if path and os.path.exists(path):
        try:
            fields = configs.field_paths(configs.load_experiment(path)(None))
        except Exception:  # the config file itself is broken: say so below
            fields = []
        for arg in argv:
            if arg.startswith("--config.") and "=" in arg:
                field = arg[len("--config.") :].split("=", 1)[0]
                if fields and field not in fields:
                    return (
                        f"--config.{field}: the config has no field {field!r}"
                        f"{configs.did_you_mean(field, fields)}; every field: "
                        f"--config={path} --show_config."
                    )
    # ml_collections puts the traceback of a failing get_config in the
    # message; its last line is the error itself.
    last_line = str(error).strip().splitlines()[-1]
    return last_line.split(": ", 1)[1] if "Error: " in last_line else last_line


def _load_config():
    """FLAGS.config, or exit with one line saying why it could not be loaded."""
    path = _config_path(sys.argv)
    message = None
    if path is None:
        message = "--config=experiments/<name>.py is required (--help lists them)."
    elif not os.path.exists(path):
        message = f"no config file {path} (--help lists the experiments)."
    else:
        try:
            return FLAGS.config
        except Exception as error:  # the file's get_config raised
            if FLAGS.debug:
                raise
            message = f"{path}: {error}"
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def parse_flags(argv):
    """absl flag parsing with one-line errors and this module's --help."""
    if any(arg in ("--help", "-h", "--helpfull", "-?") for arg in argv[1:]):
        print(_usage())
        sys.exit(0)
    try:
        return FLAGS(argv)
    except Exception as error:  # absl and ml_collections raise several types
        if "--debug" in argv:
            raise
        print(f"error: {_flag_error(argv, error)}", file=sys.stderr)
        sys.exit(2)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = _load_config()
    if FLAGS.show_config:
        print(config)
        return
    if not FLAGS.workdir:
        print(
            "error: --workdir is required (where the run is written).", file=sys.stderr
        )
        sys.exit(2)
    scalar_logs.quiet_library_logs()
    parallel.initialize_distributed(
        FLAGS.coordinator_address,
        FLAGS.num_processes,
        FLAGS.process_id,
        auto=FLAGS.multihost,
        timeout_s=FLAGS.distributed_timeout,
    )
    logging.info("JAX devices: %s", jax.devices())
    resume = shlex.join([sys.executable, "-m", "sparse_shared_jax.main", *sys.argv[1:]])
    try:
        train.train_and_evaluate(config, FLAGS.workdir)
    except loop.TrainingInterruptedError as stopped:
        print(f"{stopped} Resume with:\n  {resume}", flush=True)
        sys.exit(128 + stopped.signal_number)
    except KeyboardInterrupt:
        print(
            "Interrupted. The checkpoints already written are kept; resume with:\n"
            f"  {resume}",
            flush=True,
        )
        sys.exit(128 + signal.SIGINT)
    except (errors.UserError, loop.NonFiniteLossError, FileNotFoundError) as error:
        if FLAGS.debug:
            raise
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
