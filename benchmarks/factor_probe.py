"""Which factors an encoder represents linearly: per factor, the largest
|correlation| of one feature with it, and how well a linear probe on all
features predicts whether the factor is in the upper half of its values.

A diagnostic for factors the method's features miss (results/
spurious_sentences.md: the sentence's sentiment). It reads finished runs
and, with ``--init_seeds``, randomly initialised encoders of the first run's
config (what meta-training starts from); it prints a Markdown table.

    python benchmarks/factor_probe.py \
        --workdirs=workdirs/spurious_sentences/full_seed0 \
        --init_seeds=0,1,2

Points are drawn uniformly over the factors (``--num_points``, seed 0); the
probe is an L2-regularised logistic regression, scored by 5-fold
cross-validation on standardised features.
"""

from __future__ import annotations

import jax
import numpy as np
from absl import app, flags
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from sparse_shared_jax import checkpoints, data, evaluate, models, trained_encoder

FLAGS = flags.FLAGS
flags.DEFINE_list("workdirs", None, "Finished runs' workdirs (hold config.json).")
flags.DEFINE_list("init_seeds", [], "Seeds of random-init encoders to probe too.")
flags.DEFINE_integer("num_points", 4000, "Uniformly drawn factor combinations.")
flags.mark_flags_as_required(["workdirs"])


def factor_scores(
    features: np.ndarray, factors: np.ndarray, factor_sizes: tuple[int, ...]
) -> list[tuple]:
    """Per factor: (largest |corr| of one feature, linear-probe accuracy of
    the factor's upper half). features [N, k], factors int [N, K]."""
    features = (features - features.mean(0)) / (features.std(0) + 1e-9)
    scores = []
    for column, size in zip(factors.T, factor_sizes, strict=True):
        correlations = [
            abs(np.corrcoef(column, feature)[0, 1]) for feature in features.T
        ]
        upper_half = (column >= size / 2).astype(int)
        probe = LogisticRegression(max_iter=2000)
        accuracy = cross_val_score(probe, features, upper_half, cv=5).mean()
        scores.append((np.nanmax(correlations), accuracy))
    return scores


def main(argv):
    del argv
    first = checkpoints.read_config(FLAGS.workdirs[0])
    dataset = data.ground_truth(first.data.name, **first.data.options.to_dict())
    factors = dataset.sample_factors(FLAGS.num_points, 0)
    observations = dataset.observations(factors)

    encoders = []  # (name, params, apply_fn)
    model = models.get_encoder(
        first.model.name, first.model.num_features, **first.model.options
    )
    for seed in FLAGS.init_seeds:
        params = model.init(jax.random.PRNGKey(int(seed)), observations[:2])
        encoders.append((f"random init, seed {seed}", params, model.apply))
    for workdir in FLAGS.workdirs:
        config = checkpoints.read_config(workdir)
        encoder = trained_encoder.load_trained_encoder(config, workdir)
        name = f"{workdir} (step {encoder.step})"
        encoders.append((name, encoder.params, encoder.apply_fn))

    names, sizes = dataset.factor_names, dataset.factor_sizes
    print("largest |corr| of one feature / linear probe of the upper half\n")
    print("| encoder | " + " | ".join(names) + " |")
    print("|" + " --- |" * (len(names) + 1))
    for name, params, apply_fn in encoders:
        features = evaluate.encode(params, apply_fn, observations)
        cells = [
            f"{r:.2f} / {a:.2f}" for r, a in factor_scores(features, factors, sizes)
        ]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    app.run(main)
