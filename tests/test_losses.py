"""Tests of the pure losses and regularisers against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_shared_jax import losses


def test_group_lasso_sums_row_norms_and_is_l1_for_one_column():
    W = jnp.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(losses.group_lasso(W), 6.0)
    column = jnp.array([[1.0], [-2.0], [0.0]])
    np.testing.assert_allclose(losses.group_lasso(column), losses.l1(column))
    batched = jnp.stack([W, 2 * W])  # [2, k, C]
    np.testing.assert_allclose(losses.group_lasso(batched), [6.0, 12.0])


def test_group_lasso_gradient_at_zero_is_zero():
    gradient = jax.grad(losses.group_lasso)(jnp.zeros((4, 3)))
    np.testing.assert_array_equal(gradient, 0.0)


@pytest.mark.parametrize(
    ("loss", "outputs", "targets", "expected"),
    [
        ("squared", [[1.0], [3.0]], [0.0, 1.0], 0.5 * (1.0 + 4.0) / 2),
        (
            "logistic",
            [[0.0], [2.0]],
            [1, 0],
            (np.log(2.0) + np.log1p(np.exp(2.0))) / 2,
        ),
        (
            "softmax",
            [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]],
            [2, 0],
            (np.log(3.0) + (np.log(np.exp([1, 2, 3]).sum()) - 1.0)) / 2,
        ),
    ],
)
def test_task_loss_matches_hand_computed(loss, outputs, targets, expected):
    value = losses.task_loss(jnp.array(outputs), jnp.array(targets), loss)
    np.testing.assert_allclose(value, expected, rtol=1e-6)


def test_task_loss_rejects_unknown_name():
    with pytest.raises(ValueError, match="loss must be one of"):
        losses.task_loss(jnp.zeros((2, 1)), jnp.zeros(2), "hinge")


def test_task_loss_keeps_leading_task_axis():
    outputs = jnp.zeros((5, 7, 1))
    targets = jnp.ones((5, 7))
    assert losses.task_loss(outputs, targets, "squared").shape == (5,)


@pytest.mark.parametrize("loss", ["squared", "logistic", "softmax"])
def test_lambda_max_is_gradient_row_norm_at_optimal_bias(loss, float64):
    """lambda_max equals max_j ||dL/dW_j|| at W = 0 and the optimal bias."""
    rng = np.random.default_rng(0)
    n, k, num_classes = 30, 5, 3
    features = jnp.asarray(rng.normal(size=(n, k)))
    if loss == "squared":
        targets = jnp.asarray(rng.normal(size=n))
    else:
        targets = jnp.asarray(rng.integers(0, 2 if loss == "logistic" else 3, n))
    C = num_classes if loss == "softmax" else 1
    b0 = losses.optimal_bias_at_zero(targets, loss, num_classes)

    def data_loss(W, b):
        return losses.task_loss(features @ W + b, targets, loss)

    grad_W, grad_b = jax.grad(data_loss, argnums=(0, 1))(jnp.zeros((k, C)), b0)
    np.testing.assert_allclose(grad_b, 0.0, atol=1e-12)  # b0 is optimal
    expected = jnp.max(jnp.linalg.norm(grad_W, axis=1))
    value = losses.lambda_max(features, targets, loss, num_classes)
    np.testing.assert_allclose(value, expected, rtol=1e-10)


def test_lambda_max_needs_num_classes_for_softmax():
    with pytest.raises(ValueError, match="num_classes"):
        losses.lambda_max(jnp.zeros((4, 2)), jnp.zeros(4, int), "softmax")


def _heads_using(features_per_task, k=5, C=2):
    """[T, k, C] heads where task t uses the features in features_per_task[t]."""
    W = np.zeros((len(features_per_task), k, C))
    for t, used in enumerate(features_per_task):
        W[t, used, :] = 1.0
    return jnp.asarray(W)


def test_usage_entropy_is_zero_when_all_tasks_share_one_feature():
    W = _heads_using([[2], [2], [2]]) * jnp.array([1.0, 5.0, 0.1])[:, None, None]
    value = losses.feature_sharing_entropy(W, "usage")
    np.testing.assert_allclose(value, 0.0, atol=1e-6)


def test_usage_entropy_is_log_k_for_uniform_usage():
    k = 5
    W = _heads_using([list(range(k))] * 4, k=k)
    np.testing.assert_allclose(
        losses.feature_sharing_entropy(W, "usage"), np.log(k), rtol=1e-6
    )
    # Different tasks on disjoint single features: also uniform on average.
    W = _heads_using([[j] for j in range(k)], k=k)
    np.testing.assert_allclose(
        losses.feature_sharing_entropy(W, "usage"), np.log(k), rtol=1e-6
    )


def test_usage_entropy_ignores_tasks_with_zero_heads():
    W_active = _heads_using([[0], [1]], k=4)
    W_with_zero = jnp.concatenate([W_active, jnp.zeros((1, 4, 2))])
    np.testing.assert_allclose(
        losses.feature_sharing_entropy(W_with_zero, "usage"),
        losses.feature_sharing_entropy(W_active, "usage"),
        rtol=1e-6,
    )


def test_per_feature_entropy_hand_computed():
    T = 4
    # Every task uses every feature equally: each feature spread over T tasks.
    W = _heads_using([[0, 1, 2]] * T, k=3)
    np.testing.assert_allclose(
        losses.feature_sharing_entropy(W, "per_feature"), -np.log(T), rtol=1e-6
    )
    # Each feature used by a single task: zero entropy.
    W = _heads_using([[0], [1], [2]], k=3)
    np.testing.assert_allclose(
        losses.feature_sharing_entropy(W, "per_feature"), 0.0, atol=1e-6
    )


@pytest.mark.parametrize("variant", ["usage", "per_feature"])
@pytest.mark.parametrize("smoothing", [0.0, 1e-2])
def test_sharing_entropy_finite_value_and_gradient_at_zero_heads(variant, smoothing):
    W = jnp.zeros((3, 4, 2))
    value, gradient = jax.value_and_grad(losses.feature_sharing_entropy)(
        W, variant, smoothing=smoothing
    )
    assert np.isfinite(value)
    assert np.all(np.isfinite(gradient))


@pytest.mark.parametrize("variant", ["usage", "per_feature"])
def test_sharing_entropy_gradient_matches_finite_differences(variant, float64):
    rng = np.random.default_rng(1)
    W = jnp.asarray(rng.normal(size=(3, 4, 2)))
    direction = jnp.asarray(rng.normal(size=W.shape))

    def f(W):
        return losses.feature_sharing_entropy(W, variant)

    step = 1e-6
    finite_difference = (f(W + step * direction) - f(W - step * direction)) / (2 * step)
    np.testing.assert_allclose(
        jnp.vdot(jax.grad(f)(W), direction), finite_difference, rtol=1e-6
    )


def test_sharing_entropy_rejects_bad_arguments():
    with pytest.raises(ValueError, match="variant must be 'usage' or 'per_feature'"):
        losses.feature_sharing_entropy(jnp.ones((2, 3, 1)), "mutual_information")
    with pytest.raises(ValueError, match=r"\[T, k, C\]"):
        losses.feature_sharing_entropy(jnp.ones((3, 1)))


# The smooth feature count ('count' variant).


def test_count_is_k_times_one_minus_exp_for_even_usage_and_one_for_one_feature():
    k, temperature = 5, 0.5
    even = _heads_using([list(range(k))] * 3, k=k)
    np.testing.assert_allclose(
        losses.smooth_feature_count(even, temperature),
        k * (1 - np.exp(-1 / temperature)),
        rtol=1e-6,
    )
    one = _heads_using([[2]] * 3, k=k)  # k p_bar = (0, 0, k, 0, 0)
    np.testing.assert_allclose(
        losses.smooth_feature_count(one, temperature),
        1 - np.exp(-k / temperature),
        rtol=1e-6,
    )
    np.testing.assert_allclose(losses.smooth_feature_count(jnp.zeros((3, k, 1))), 0.0)


def test_count_charges_a_factor_split_over_two_copies_more_than_one_feature():
    # Four tasks need the same information: all on feature 0, or half on a copy.
    shared = _heads_using([[0], [0], [0], [0]], k=4)
    split = _heads_using([[0], [0], [1], [1]], k=4)
    assert losses.smooth_feature_count(split) > losses.smooth_feature_count(shared)


def test_count_pushes_rare_features_harder_than_common_ones():
    # Feature 0 is used by 7 tasks, feature 1 by 1: the gradient on the rare
    # feature's row is larger than on the common one's (the 'usage' entropy's
    # gradient does not separate them as much).
    W = _heads_using([[0]] * 7 + [[1]], k=4)

    def gradient_on_rows(regularizer):
        gradient = jax.grad(regularizer)(W)  # [T, k, C]
        return float(jnp.abs(gradient[7, 1]).sum()), float(
            jnp.abs(gradient[0, 0]).sum()
        )

    rare, common = gradient_on_rows(losses.smooth_feature_count)
    assert rare > 5 * common


def test_count_finite_gradient_at_zero_heads_and_matches_finite_differences(float64):
    value, gradient = jax.value_and_grad(losses.smooth_feature_count)(
        jnp.zeros((3, 4, 2))
    )
    assert np.isfinite(value) and np.all(np.isfinite(gradient))
    rng = np.random.default_rng(2)
    W = jnp.asarray(rng.normal(size=(3, 4, 2)))
    direction = jnp.asarray(rng.normal(size=W.shape))
    step = 1e-6

    def f(W):
        return losses.smooth_feature_count(W, 0.3)

    finite_difference = (f(W + step * direction) - f(W - step * direction)) / (2 * step)
    np.testing.assert_allclose(
        jnp.vdot(jax.grad(f)(W), direction), finite_difference, rtol=1e-6
    )


def test_sharing_regularizer_dispatches_every_variant():
    W = jnp.asarray(np.random.default_rng(3).normal(size=(3, 4, 1)))
    for variant in ("usage", "per_feature"):
        np.testing.assert_allclose(
            losses.sharing_regularizer(W, variant),
            losses.feature_sharing_entropy(W, variant),
        )
    np.testing.assert_allclose(
        losses.sharing_regularizer(W, "count", temperature=0.2),
        losses.smooth_feature_count(W, 0.2),
    )
    with pytest.raises(ValueError, match="variant must be one of"):
        losses.sharing_regularizer(W, "entropy")
    with pytest.raises(ValueError, match="temperature must be > 0"):
        losses.smooth_feature_count(W, 0.0)
