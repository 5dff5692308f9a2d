"""The plain multi-task baseline: linear task heads trained with the encoder.

The floor the bilevel step is measured against (benchmarks/step_benchmark.py).
The same encoder runs once on the same flattened episode (through
`bilevel.episode_features`), but there is no inner problem: every task slot
t in 0..T-1 owns a linear head (W [T, k, C], b [T, C]), a parameter like the
encoder's, and one optimiser step updates the encoder and the heads together
on the mean task loss of all the episode's examples (support and query).
No sparsity penalty and no sharing term.

Heads are indexed by task slot, so this is classic multi-task learning when
slot t holds the same task in every episode; with tasks redrawn every
episode it is only a cost baseline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from sparse_shared_jax import bilevel, losses


@dataclasses.dataclass(frozen=True)
class MultitaskSettings:
    """Static settings of the multi-task step (hashable, for jit).

    Attributes:
      loss: task loss, 'logistic', 'softmax' or 'squared'.
      num_classes: C for 'softmax'; None otherwise.
      normalization: 'episode' or 'none', as in bilevel.BilevelSettings.
    """

    loss: str = "logistic"
    num_classes: int | None = None
    normalization: str = "episode"

    def __post_init__(self):
        losses.check_loss_name(self.loss)
        if self.normalization not in bilevel.NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {bilevel.NORMALIZATIONS}, got "
                f"{self.normalization!r}."
            )
        if self.loss == "softmax" and (
            self.num_classes is None or self.num_classes < 2
        ):
            raise ValueError(
                "loss='softmax' needs num_classes >= 2; got "
                f"num_classes={self.num_classes}."
            )

    @property
    def num_outputs(self) -> int:
        """C: outputs per head."""
        return self.num_classes if self.loss == "softmax" else 1


def create_train_state(
    encoder,
    rng: jax.Array,
    example_x: jax.Array,
    num_tasks: int,
    settings: MultitaskSettings,
    optimizer: optax.GradientTransformation,
) -> train_state.TrainState:
    """Encoder parameters and zero heads, optimised together.

    Args:
      encoder: a Flax module mapping x [N, *obs] to features [N, k].
      rng: the key that initialises the encoder.
      example_x: example inputs [N, *obs].
      num_tasks: T, the number of heads (task slots).
      settings: the static MultitaskSettings (C comes from it).
      optimizer: updates encoder parameters and heads together.

    Returns:
      A TrainState with params {'encoder': ..., 'heads': {'W': [T, k, C],
      'b': [T, C]}} and apply_fn = encoder.apply (which takes
      params['encoder']).
    """
    if num_tasks < 1:
        raise ValueError(f"num_tasks must be >= 1; got {num_tasks}.")
    encoder_params = encoder.init(rng, example_x)
    features = jax.eval_shape(encoder.apply, encoder_params, example_x)  # [N, k]
    num_features = features.shape[-1]
    heads = {
        "W": jnp.zeros((num_tasks, num_features, settings.num_outputs), jnp.float32),
        "b": jnp.zeros((num_tasks, settings.num_outputs), jnp.float32),
    }
    return train_state.TrainState.create(
        apply_fn=encoder.apply,
        params={"encoder": encoder_params, "heads": heads},
        tx=optimizer,
    )


def multitask_loss(
    params: dict[str, Any],
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    episode: bilevel.EpisodeLike,
    settings: MultitaskSettings,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Mean task loss of the heads on all the episode's examples.

    Args:
      params: {'encoder': encoder parameters, 'heads': {'W': [T, k, C],
        'b': [T, C]}}.
      apply_fn: apply_fn(params['encoder'], x [N, *obs]) -> features [N, k].
      episode: support/query inputs and targets for T tasks.
      settings: the static MultitaskSettings.

    Returns:
      (loss, aux) with aux = {'accuracy': mean accuracy (0 for regression)}.
    """
    W, b = params["heads"]["W"], params["heads"]["b"]
    if W.shape[0] != episode.support_x.shape[0]:
        raise ValueError(
            f"The state has {W.shape[0]} heads but the episode has "
            f"{episode.support_x.shape[0]} tasks; build the state with "
            "num_tasks equal to the episode's."
        )
    support, query = bilevel.episode_features(
        params["encoder"], apply_fn, episode, settings.normalization
    )
    features = jnp.concatenate([support, query], axis=1)  # [T, n_s + n_q, k]
    targets = jnp.concatenate([episode.support_y, episode.query_y], axis=1)
    outputs = features @ W + b[:, None, :]  # [T, n_s + n_q, C]
    loss = jnp.mean(losses.task_loss(outputs, targets, settings.loss))
    accuracy = jnp.mean(losses.task_accuracy(outputs, targets, settings.loss))
    return loss, {"accuracy": jax.lax.stop_gradient(accuracy)}


def train_step(
    state: train_state.TrainState,
    episode: bilevel.EpisodeLike,
    settings: MultitaskSettings,
) -> tuple[train_state.TrainState, dict[str, jax.Array]]:
    """One joint update of the encoder and the heads on one episode.

    Pure: jit it with `settings` static, e.g.
    ``jax.jit(train_step, static_argnums=2, donate_argnums=0)``.

    Returns:
      The updated state and metrics 'loss', 'accuracy' and 'grad_norm'.
    """
    (loss, aux), grads = jax.value_and_grad(multitask_loss, has_aux=True)(
        state.params, state.apply_fn, episode, settings
    )
    metrics = dict(aux, loss=loss, grad_norm=optax.tree.norm(grads))
    return state.apply_gradients(grads=grads), metrics
