"""How the disentanglement of a run grows with its outer steps.

Evaluates the checkpoints of one finished ground-truth run at the given
steps with the standard protocol (gradient-boosted-tree DCI on 10,000 +
5,000 points, MIG, MCC; no BetaVAE/FactorVAE) and prints a Markdown table.
The run must keep those checkpoints: train it with
``--config.checkpoint.every_steps`` dividing every step and
``--config.checkpoint.max_to_keep`` large enough, e.g.

    python -m sparse_shared_jax.main --config=experiments/shapes3d.py:steps=5000 \
        --workdir=workdirs/shapes3d_5000 --config.checkpoint.every_steps=200 \
        --config.checkpoint.max_to_keep=30
    python benchmarks/training_length.py --workdir=workdirs/shapes3d_5000 \
        --steps=600,2000,5000

Because the data order and the learning rate depend on the step only, the
checkpoint at step 600 of a 5,000-step run is the state a 600-step run ends
in.
"""

from __future__ import annotations

import time

from absl import app, flags

from sparse_shared_jax import checkpoints, data, evaluate, trained_encoder

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "The run's workdir (holds config.json).")
flags.DEFINE_list("steps", ["600", "2000", "5000"], "Checkpoint steps to evaluate.")
flags.mark_flags_as_required(["workdir"])

# The standard protocol without the intervention scores (minutes per point).
PROTOCOL = evaluate.Protocol(10_000, 5_000, "gbt")
COLUMNS = (
    ("DCI D", "dci_disentanglement"),
    ("DCI C", "dci_completeness"),
    ("DCI I", "dci_informativeness_test"),
    ("MIG", "mig"),
    ("MCC", "mcc"),
)


def main(argv):
    del argv
    config = checkpoints.read_config(FLAGS.workdir)
    dataset = data.ground_truth(config.data.name, **config.data.options.to_dict())
    lines = [
        "| step | " + " | ".join(title for title, _ in COLUMNS) + " | seconds |",
        "|" + " --- |" * (len(COLUMNS) + 2),
    ]
    for step in (int(step) for step in FLAGS.steps):
        start = time.perf_counter()
        encoder = trained_encoder.load_trained_encoder(config, FLAGS.workdir, step)
        scores = evaluate.representation_metrics(
            encoder.params, encoder.apply_fn, dataset, PROTOCOL, config.seed
        ).scores
        lines.append(
            f"| {step} | "
            + " | ".join(f"{scores[key]:.3f}" for _, key in COLUMNS)
            + f" | {time.perf_counter() - start:.0f} |"
        )
        print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
