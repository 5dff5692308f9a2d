"""The sparse target head along its penalty grid, on a finished transfer run.

Refits the sparse head of every alpha of config.transfer.alphas on the
frozen encoder of a run with a transfer evaluation (the harness's solver,
`transfer.fit_sparse_head` with `transfer.head_settings`) and prints, per
alpha, the active features, the weights on the feature most correlated
with the target and on the one most correlated with the spurious attribute
(test split), and validation and test accuracy (average / worst group):
which features sparsity keeps, and whether the validation's choice of alpha
is the test's.

    python benchmarks/penalty_path.py --workdir=workdirs/spurious_scale/full_seed1
"""

from __future__ import annotations

import numpy as np
from absl import app, flags

from sparse_shared_jax import checkpoints, evaluate, trained_encoder, transfer
from sparse_shared_jax.data import labelled

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "The finished run's workdir.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
    del argv
    config = checkpoints.read_config(FLAGS.workdir)
    encoder = trained_encoder.load_trained_encoder(config, FLAGS.workdir)
    benchmark = labelled.open_labelled_benchmark(config)
    features, labels = {}, {}
    for name, split in benchmark.splits.items():
        features[name] = evaluate.encode_rows(
            encoder.params,
            encoder.apply_fn,
            len(split),
            split.inputs,
            batch_size=transfer.ENCODE_BATCH_SIZE,
        )  # [n, k]
        labels[name] = split.labels
    correlations = transfer.feature_correlations(features["test"], labels["test"])
    core = int(np.argmax(correlations["label_correlation"]))
    shortcut = int(np.argmax(correlations["attribute_correlation"]))
    print(
        f"target feature {core} (|corr| "
        f"{correlations['label_correlation'][core]:.2f}), attribute feature "
        f"{shortcut} ({correlations['attribute_correlation'][shortcut]:.2f})\n"
    )
    print(
        "| alpha | active | weight, target feature | weight, attribute feature "
        "| validation avg. / worst | test avg. / worst |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    settings = transfer.head_settings(config)
    for alpha in config.transfer.alphas:
        head = transfer.fit_sparse_head(
            features["train"], labels["train"]["label"], float(alpha), settings=settings
        )
        cells = []
        for name in ("validation", "test"):
            scores = transfer.group_scores(
                head, features[name], labels[name]["label"], labels[name]["group"]
            )
            cells.append(f"{scores['average']:.3f} / {scores['worst_group']:.3f}")
        weights = np.asarray(head.weights)
        print(
            f"| {alpha} | {head.num_active} | {weights[core]:+.2f} | "
            f"{weights[shortcut]:+.2f} | {cells[0]} | {cells[1]} |"
        )


if __name__ == "__main__":
    app.run(main)
