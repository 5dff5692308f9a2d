"""Tests of the bilevel objective and the outer training step."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparse_shared_jax import bilevel, data, inner, models


def linear_encoder(params, x):
    return x @ params


def small_episode(label_type="binary", num_tasks=3, seed=0, **options):
    dataset = data.ground_truth("nonlinear_mixing", observation_dim=8, seed=0)
    sampler = data.EpisodeSampler(
        dataset,
        num_tasks=num_tasks,
        support_size=24,
        query_size=16,
        label_type=label_type,
        seed=seed,
        **options,
    )
    return sampler


def test_episode_features_encode_once_and_split_per_task():
    episode = bilevel.EpisodeBatch(
        support_x=jnp.arange(2 * 3 * 4.0).reshape(2, 3, 4),
        support_y=jnp.zeros((2, 3)),
        query_x=100 + jnp.arange(2 * 5 * 4.0).reshape(2, 5, 4),
        query_y=jnp.zeros((2, 5)),
    )
    calls = []

    def apply_fn(params, x):
        calls.append(x.shape)
        return x[:, :2] * params

    support, query = bilevel.episode_features(2.0, apply_fn, episode, "none")
    assert calls == [(2 * 3 + 2 * 5, 4)]
    np.testing.assert_array_equal(support, episode.support_x[..., :2] * 2)
    np.testing.assert_array_equal(query, episode.query_x[..., :2] * 2)
    support, query = bilevel.episode_features(2.0, apply_fn, episode, "episode")
    everything = jnp.concatenate([support.reshape(-1, 2), query.reshape(-1, 2)])
    np.testing.assert_allclose(jnp.mean(everything, 0), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.std(everything, 0), 1.0, atol=1e-4)


@pytest.mark.parametrize(
    ("label_type", "loss", "num_classes"),
    [("binary", "logistic", None), ("multiclass", "softmax", 3)],
)
@pytest.mark.parametrize("share_weight", [0.0, 0.1])
@pytest.mark.slow
def test_outer_gradient_matches_finite_differences(
    label_type, loss, num_classes, share_weight, float64
):
    """d(outer loss)/d(encoder params), through episode standardisation and
    implicitly differentiated heads, against central finite differences.

    lambda_mode='absolute': with 'relative' the penalty follows lambda_max,
    which is deliberately held constant (stop_gradient) in the gradient.
    """
    options = {"num_classes": num_classes} if num_classes else {}
    episode = bilevel.EpisodeBatch.from_episode(small_episode(label_type, **options)(0))
    episode = jax.tree.map(lambda x: jnp.asarray(x), episode)
    episode = episode._replace(
        support_x=episode.support_x.astype(jnp.float64),
        query_x=episode.query_x.astype(jnp.float64),
    )
    settings = bilevel.BilevelSettings(
        loss=loss,
        num_classes=num_classes,
        lambda_mode="absolute",
        alpha=0.03,
        solver=inner.InnerSettings(
            ridge=1e-3, maxiter=20000, tol=1e-13, linear_solve_tol=1e-12
        ),
        share_weight=share_weight,
    )
    rng = np.random.default_rng(0)
    params = jnp.asarray(rng.normal(size=(8, 5)))

    @jax.jit
    def loss_fn(params):
        return bilevel.outer_loss(params, linear_encoder, episode, settings)[0]

    gradient = jax.grad(loss_fn)(params)
    for _ in range(2):
        direction = jnp.asarray(rng.normal(size=params.shape))
        step = 1e-5
        finite_difference = (
            loss_fn(params + step * direction) - loss_fn(params - step * direction)
        ) / (2 * step)
        np.testing.assert_allclose(
            jnp.vdot(gradient, direction), finite_difference, rtol=1e-4
        )


@pytest.mark.slow
def test_inner_sharing_placement_changes_the_heads_not_the_outer_loss_terms():
    episode = bilevel.EpisodeBatch.from_episode(small_episode()(0))
    params = jnp.asarray(np.random.default_rng(0).normal(size=(8, 5)), jnp.float32)
    outer = bilevel.BilevelSettings(share_weight=0.5, share_placement="outer")
    inner_placed = bilevel.BilevelSettings(share_weight=0.5, share_placement="inner")
    loss_outer, aux_outer = bilevel.outer_loss(params, linear_encoder, episode, outer)
    loss_inner, aux_inner = bilevel.outer_loss(
        params, linear_encoder, episode, inner_placed
    )
    np.testing.assert_allclose(
        loss_outer, aux_outer["query_loss"] + 0.5 * aux_outer["sharing"]
    )
    np.testing.assert_allclose(loss_inner, aux_inner["query_loss"])
    assert aux_inner["sharing"] < aux_outer["sharing"]


@pytest.mark.slow
def test_train_step_compiles_once_and_lowers_the_query_loss():
    sampler = small_episode(num_tasks=8)
    encoder = models.get_encoder("mlp", num_features=5, hidden_sizes=(32,))
    first = bilevel.EpisodeBatch.from_episode(sampler(0))
    state = bilevel.create_train_state(
        encoder, jax.random.key(0), first.support_x[0], optax.adam(3e-3)
    )
    settings = bilevel.BilevelSettings(
        alpha=0.1, solver=inner.InnerSettings(maxiter=200)
    )
    step = jax.jit(
        chex.assert_max_traces(bilevel.train_step, n=1),
        static_argnums=2,
        donate_argnums=0,
    )
    evaluation_episode = bilevel.EpisodeBatch.from_episode(sampler(10**6))

    def evaluation_loss(params):
        return bilevel.outer_loss(params, encoder.apply, evaluation_episode, settings)[
            1
        ]["query_loss"]

    before = evaluation_loss(state.params)
    for i in range(150):
        state, metrics = step(
            state, bilevel.EpisodeBatch.from_episode(sampler(i)), settings
        )
    assert np.isfinite(float(metrics["loss"]))
    assert set(metrics) >= {
        "loss",
        "query_loss",
        "query_accuracy",
        "grad_norm",
        "active_features",
        "distinct_features",
        "sharing",
        "share_weight",
        "inner_iterations",
        "inner_optimality_error",
        "inner_unconverged",
    }
    after = evaluation_loss(state.params)
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(alpha=1.5), "alpha must be in"),
        (dict(normalization="layer"), "normalization must be one of"),
        (dict(share_placement="both"), "share_placement must be one of"),
        (dict(share_weight=-1.0), "share_weight must be >= 0"),
        (dict(share_variant="entropy"), "share_variant must be one of"),
        (dict(share_temperature=0.0), "share_temperature must be > 0"),
        (dict(share_warmup_steps=-5), "share_warmup_steps must be >= 0"),
        (
            dict(share_warmup_steps=10, share_placement="inner"),
            "share_warmup_steps applies to share_placement='outer' only",
        ),
        (dict(loss="hinge"), "loss must be one of"),
    ],
)
def test_settings_reject_bad_values(change, message):
    with pytest.raises(ValueError, match=message):
        bilevel.BilevelSettings(**change)


@pytest.mark.slow
def test_sharing_weight_warms_up_linearly_and_train_step_uses_it():
    settings = bilevel.BilevelSettings(share_weight=0.2, share_warmup_steps=10)
    for step, expected in ((0, 0.0), (5, 0.1), (10, 0.2), (50, 0.2)):
        np.testing.assert_allclose(
            settings.share_weight_at(jnp.asarray(step)), expected
        )
    plain = bilevel.BilevelSettings(share_weight=0.2)
    np.testing.assert_allclose(plain.share_weight_at(jnp.asarray(0)), 0.2)

    sampler = small_episode(num_tasks=4)
    encoder = models.get_encoder("mlp", num_features=5, hidden_sizes=(8,))
    episode = bilevel.EpisodeBatch.from_episode(sampler(0))
    state = bilevel.create_train_state(
        encoder, jax.random.key(0), episode.support_x[0], optax.sgd(0.0)
    )
    state = state.replace(step=5)
    _, metrics = bilevel.train_step(state, episode, settings)
    np.testing.assert_allclose(metrics["share_weight"], 0.1, rtol=1e-6)
    np.testing.assert_allclose(
        metrics["loss"], metrics["query_loss"] + 0.1 * metrics["sharing"], rtol=1e-5
    )


def test_projection_removes_only_the_conflicting_part_task_by_task():
    rng = np.random.default_rng(0)
    query = (
        jnp.asarray(rng.normal(size=(3, 4, 2))),
        jnp.asarray(rng.normal(size=(3, 5, 2))),
    )
    share = tuple(jnp.asarray(rng.normal(size=q.shape)) for q in query)
    # Task 0 conflicts (its sharing gradient points against the query's),
    # task 1 agrees, task 2 is orthogonal-ish noise.
    share = tuple(
        s.at[0].set(-q[0] + 0.1 * s[0]).at[1].set(q[1])
        for s, q in zip(share, query, strict=True)
    )
    projected, fraction = bilevel.project_conflicts(share, query)

    def dots(a, b):
        return sum(jnp.sum(x * y, axis=(1, 2)) for x, y in zip(a, b, strict=True))

    before, after = dots(share, query), dots(projected, query)
    assert before[0] < 0 and before[1] > 0
    np.testing.assert_allclose(after[0], 0.0, atol=1e-5)  # conflict removed
    for s, p in zip(share, projected, strict=True):
        np.testing.assert_array_equal(p[1], s[1])  # agreeing task untouched
    assert float(fraction) == pytest.approx(np.mean(np.asarray(before) < 0))


@pytest.mark.slow
def test_projected_gradient_is_the_plain_one_without_sharing_and_differs_with_it():
    episode = bilevel.EpisodeBatch.from_episode(small_episode(num_tasks=4)(0))
    params = jnp.asarray(np.random.default_rng(1).normal(size=(8, 5)), jnp.float32)
    plain = bilevel.BilevelSettings(share_weight=0.3, share_variant="count")
    projected = bilevel.BilevelSettings(
        share_weight=0.3, share_variant="count", share_projected=True
    )
    (loss, _), grads = bilevel.outer_value_and_grad(
        params, linear_encoder, episode, plain
    )
    expected_loss, expected = jax.value_and_grad(
        lambda p: bilevel.outer_loss(p, linear_encoder, episode, plain)[0]
    )(params)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
    np.testing.assert_allclose(grads, expected, rtol=1e-5, atol=1e-7)
    # Weight 0: the projected path gives the query loss's gradient.
    (_, aux), zero = bilevel.outer_value_and_grad(
        params, linear_encoder, episode, projected, share_weight=0.0
    )
    query_only = jax.grad(
        lambda p: bilevel.outer_loss(p, linear_encoder, episode, plain, 0.0)[0]
    )(params)
    np.testing.assert_allclose(zero, query_only, rtol=1e-5, atol=1e-7)
    assert 0.0 <= float(aux["share_conflicts"]) <= 1.0
    (projected_loss, _), with_sharing = bilevel.outer_value_and_grad(
        params, linear_encoder, episode, projected
    )
    np.testing.assert_allclose(projected_loss, expected_loss, rtol=1e-6)
    assert np.all(np.isfinite(with_sharing))
