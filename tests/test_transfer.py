"""Transfer evaluation, its baselines and the spurious benchmark runner."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparse_shared_jax import models, spurious_benchmark, transfer


def spurious_features(num, agreement, rng, noise=0.2):
    """Known-answer features [num, 3]: label + noise, attribute + noise, noise.

    Labels are balanced; the attribute equals the label on a fraction
    `agreement` of the examples. Returns (features, labels, groups).
    """
    labels = rng.permutation(np.arange(num) % 2)
    agrees = rng.random(num) < agreement
    attributes = np.where(agrees, labels, 1 - labels)
    features = np.stack(
        [
            labels + noise * rng.standard_normal(num),
            attributes + noise * rng.standard_normal(num),
            rng.standard_normal(num),
        ],
        axis=1,
    ).astype(np.float32)
    return features, labels, 2 * labels + attributes


@pytest.fixture(scope="module")
def splits():
    rng = np.random.default_rng(0)
    return {
        "train": spurious_features(2000, 0.95, rng),
        "validation": spurious_features(400, 0.5, rng),
        "test": spurious_features(2000, 0.5, rng),
    }


def test_sparse_head_picks_the_causal_feature(splits):
    features, labels, _ = splits["train"]
    head = transfer.fit_sparse_head(features, labels, alpha=0.7)
    assert head.num_active == 1
    assert head.weights[0] > 0
    test_features, test_labels, test_groups = splits["test"]
    scores = transfer.group_scores(head, test_features, test_labels, test_groups)
    assert scores["worst_group"] > 0.95


def test_head_on_the_spurious_feature_fails_the_minority_groups(splits):
    features, labels, _ = splits["train"]
    head = transfer.fit_sparse_head(features[:, 1:2], labels, alpha=0.0)
    test_features, test_labels, test_groups = splits["test"]
    scores = transfer.group_scores(
        head, test_features[:, 1:2], test_labels, test_groups
    )
    assert 0.4 < scores["average"] < 0.6
    assert scores["worst_group"] < 0.05
    # Groups 1 (label 0, attribute 1) and 2 (label 1, attribute 0) fail.
    assert scores["per_group"][1] < 0.05 and scores["per_group"][2] < 0.05
    assert scores["per_group"][0] > 0.95 and scores["per_group"][3] > 0.95


def test_selection_on_validation_keeps_a_head_that_is_robust(splits):
    selection = transfer.select_sparse_head(
        *splits["train"][:2], *splits["validation"], alphas=(0.0, 0.1, 0.5, 0.9)
    )
    assert set(selection.scores) == {0.0, 0.1, 0.5, 0.9}
    best_validation = max(s["worst_group"] for s in selection.scores.values())
    assert selection.scores[selection.alpha]["worst_group"] == best_validation
    scores = transfer.group_scores(selection.head, *splits["test"])
    assert scores["worst_group"] > 0.95
    assert abs(selection.head.weights[0]) > 10 * abs(selection.head.weights[1])


def test_unpenalised_head_is_a_stationary_point(float64):
    rng = np.random.default_rng(1)
    features = rng.standard_normal((300, 4))
    labels = (features @ [1.0, -0.5, 0.0, 0.2] + rng.standard_normal(300) > 0).astype(
        int
    )
    ridge = 1e-2
    head = transfer.fit_sparse_head(features, labels, alpha=0.0, ridge=ridge, tol=1e-10)
    z = (features - head.mean) / head.std

    def objective(w, b):
        logits = z @ w + b
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels)) + (
            0.5 * ridge * jnp.sum(w**2)
        )

    grad_w, grad_b = jax.grad(objective, argnums=(0, 1))(
        jnp.asarray(head.weights), jnp.asarray(head.bias)
    )
    assert float(jnp.max(jnp.abs(grad_w))) < 1e-5
    assert abs(float(grad_b)) < 1e-5


def test_lasso_path_starts_with_the_causal_feature_and_bad_input_is_named(splits):
    features, labels, _ = splits["train"]
    # Just below lambda_max only the feature with the largest gradient enters.
    head = transfer.fit_sparse_head(features, labels, alpha=0.99)
    assert head.num_active == 1 and head.weights[0] > 0
    with pytest.raises(ValueError, match="every class present"):
        transfer.fit_sparse_head(features, np.zeros_like(labels), alpha=0.1)
    with pytest.raises(ValueError, match="alpha must be in"):
        transfer.fit_sparse_head(features, labels, alpha=1.0)
    with pytest.raises(ValueError, match="features must be"):
        transfer.fit_sparse_head(features[:, 0], labels, alpha=0.1)


def test_three_class_head_uses_only_the_informative_feature_rows():
    # Class c sits at mean 2c on feature 0; features 1-3 are noise.
    rng = np.random.default_rng(3)
    labels = np.arange(900) % 3
    features = rng.standard_normal((900, 4)).astype(np.float32)
    features[:, 0] += 2.0 * labels
    head = transfer.fit_sparse_head(features, labels, alpha=0.5)
    assert head.weights.shape == (4, 3) and head.bias.shape == (3,)
    # Group lasso over rows: the noise features are dropped for all classes.
    assert head.num_active == 1 and np.any(head.weights[0] != 0)
    # Bayes accuracy of means 2 apart at unit noise: 1 - (4/3) Phi(-1) = 0.79.
    assert (head.predict(features) == labels).mean() > 0.7
    dense = transfer.fit_sparse_head(features, labels, alpha=0.0)
    assert dense.num_active == 4 and (dense.predict(features) == labels).mean() > 0.75
    with pytest.raises(ValueError, match="every class present"):
        transfer.fit_sparse_head(features, np.where(labels == 1, 2, labels), 0.1)


def test_balanced_indices_cut_every_group_to_the_smallest():
    groups = np.array([0] * 10 + [1] * 3 + [2] * 7)
    keep = transfer.balanced_indices(groups, np.random.default_rng(0))
    np.testing.assert_array_equal(np.bincount(groups[keep]), [3, 3, 3])
    assert len(np.unique(keep)) == len(keep)


def test_last_layer_retraining_recovers_the_label_from_erm_like_features():
    rng = np.random.default_rng(2)
    # ERM-like features: the attribute sharp, the label weak and noisy.
    features, labels, groups = spurious_features(800, 0.5, rng, noise=0.1)
    features[:, 0] = labels + 0.3 * rng.standard_normal(800)
    erm_like_head = transfer.LinearHead(
        np.array([0.2, 5.0, 0.0]), -2.6, np.zeros(3), np.ones(3)
    )
    test = spurious_features(2000, 0.5, rng, noise=0.1)
    test[0][:, 0] = test[1] + 0.3 * rng.standard_normal(2000)
    assert transfer.group_scores(erm_like_head, *test)["worst_group"] < 0.05
    selection = transfer.last_layer_retraining(
        features, labels, groups, alphas=(0.0, 0.1, 0.3), seed=0
    )
    assert transfer.group_scores(selection.head, *test)["worst_group"] > 0.9
    assert selection.alpha in (0.0, 0.1, 0.3)


def test_erm_learns_a_separable_toy_task():
    rng = np.random.default_rng(3)
    inputs = rng.standard_normal((512, 5)).astype(np.float32)
    labels = (inputs[:, 0] - inputs[:, 1] > 0).astype(np.int32)
    encoder = models.get_encoder("mlp", 4, hidden_sizes=(32,))
    model = transfer.train_erm(
        encoder,
        inputs,
        labels,
        num_steps=300,
        batch_size=64,
        learning_rate=1e-2,
        seed=0,
    )
    features = np.asarray(model.apply_fn(model.params, inputs))
    assert np.mean(model.head.predict(features) == labels) > 0.95
    with pytest.raises(ValueError, match="batch_size"):
        transfer.train_erm(
            encoder,
            inputs,
            labels,
            num_steps=1,
            batch_size=1000,
            learning_rate=1e-2,
            seed=0,
        )


def test_erm_learns_three_classes_and_survives_a_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(4)
    inputs = rng.standard_normal((600, 5)).astype(np.float32)
    labels = np.argmax(inputs[:, :3], axis=1).astype(np.int32)  # 3 classes
    encoder = models.get_encoder("mlp", 4, hidden_sizes=(32,))
    model = transfer.train_erm(
        encoder,
        inputs,
        labels,
        num_steps=400,
        batch_size=64,
        learning_rate=1e-2,
        seed=0,
        num_classes=3,
    )
    assert model.head.weights.shape == (4, 3)
    features = np.asarray(model.apply_fn(model.params, inputs))
    predictions = model.head.predict(features)
    assert np.mean(predictions == labels) > 0.9

    path = str(tmp_path / "erm.msgpack")
    transfer.save_erm(model, path)
    restored = transfer.load_erm(encoder, inputs[:1], path)
    restored_features = np.asarray(restored.apply_fn(restored.params, inputs))
    np.testing.assert_array_equal(restored_features, features)
    np.testing.assert_array_equal(
        restored.head.logits(features), model.head.logits(features)
    )
    with pytest.raises(ValueError, match="num_classes"):
        transfer.train_erm(
            encoder, inputs, labels, num_steps=1, batch_size=8,
            learning_rate=1e-2, seed=0, num_classes=1,
        )  # fmt: skip


def tiny_config(argument):
    """The benchmark's config, shrunk to seconds: tiny splits, 2 steps."""
    get_config = spurious_benchmark.load_experiment(spurious_benchmark.EXPERIMENT)
    config = get_config(argument)
    config.num_train_steps = 2
    config.log_every_steps = 1
    config.eval_every_steps = 2
    config.checkpoint.every_steps = 2
    config.episode.num_tasks = 2
    config.episode.support_size = 8
    config.episode.query_size = 4
    config.inner.maxiter = 20
    config.eval.num_samples = 200
    config.eval.final_num_train = 200
    config.eval.final_num_test = 100
    config.eval.intervention_num_train = 10
    config.eval.intervention_num_eval = 10
    config.data.options.train_size = 200
    config.data.options.validation_size = 80
    config.data.options.test_size = 80
    config.model.num_features = 4
    config.model.options = {"channels": (4, 4, 4, 4), "hidden_size": 16}
    config.transfer.alphas = (0.0, 0.3)
    config.transfer.head_maxiter = 100
    config.transfer.erm_steps = 3
    config.transfer.erm_batch_size = 16
    return config


@pytest.mark.slow
def test_benchmark_runs_end_to_end_and_reads_finished_runs_back(tmp_path, monkeypatch):
    results = spurious_benchmark.run_benchmark(tiny_config, str(tmp_path), seeds=[0])
    for key in ("method", "erm", "last_layer"):
        (record,) = results[key]
        assert 0.0 <= record["worst_group"] <= record["average"] <= 1.0
        assert set(record["per_group"]) == {"0", "1", "2", "3"}
    for path in (
        "method_seed0/metrics.json",
        "method_seed0/transfer.json",
        "erm_seed0/params.msgpack",
        "erm_seed0/erm.json",
        "erm_seed0/last_layer.json",
    ):
        assert os.path.exists(tmp_path / path), path
    with open(tmp_path / "erm_seed0/erm.json") as f:
        assert json.load(f)["worst_group"] == results["erm"][0]["worst_group"]

    # A restart trains nothing and returns the same numbers.
    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was recomputed")

    monkeypatch.setattr(spurious_benchmark.train, "train_and_evaluate", refuse)
    monkeypatch.setattr(spurious_benchmark.transfer, "train_erm", refuse)
    again = spurious_benchmark.run_benchmark(tiny_config, str(tmp_path), seeds=[0])
    for key in results:
        assert again[key][0]["worst_group"] == results[key][0]["worst_group"]
    assert 0.0 <= again["method"][0]["last_layer"]["worst_group"] <= 1.0
    assert len(again["erm"][0]["feature_label_correlation"]) == 4  # k
    table = spurious_benchmark.markdown_table(again, [0])
    assert "| ERM | 1 |" in table
    assert "worst-group accuracy" in table

    # Evaluation pieces lost after training: recomputed from saved parameters.
    os.remove(tmp_path / "erm_seed0/erm.json")
    os.remove(tmp_path / "method_seed0/transfer.json")
    third = spurious_benchmark.run_benchmark(tiny_config, str(tmp_path), seeds=[0])
    for key in results:
        assert third[key][0]["worst_group"] == results[key][0]["worst_group"]
