"""trained_encoder.load_trained_encoder: the encoder a run left in its workdir.

A checkpoint is written the way the training loop writes it
(`checkpoints.Checkpointer.save` of the train state); the notebook test of
colabs/transfer.ipynb covers a checkpoint written by `train.train_and_evaluate`.
"""

import jax
import numpy as np
import pytest

from sparse_shared_jax import (
    bilevel,
    checkpoints,
    configs,
    loop,
    models,
    trained_encoder,
)

_STEP = 7


def _config(hidden_sizes=(16,)):
    config = configs.base_config()  # nonlinear_mixing: observations [20]
    config.model.options.hidden_sizes = hidden_sizes
    return config


def _save_run(config, workdir, step=_STEP):
    """Writes a checkpoint at `step` whose parameters are not the initial ones."""
    encoder = models.get_encoder(
        config.model.name,
        config.model.num_features,
        **config.model.options.to_dict(),
    )
    state = bilevel.create_train_state(
        encoder,
        jax.random.key(config.seed),
        np.zeros((1, 20), np.float32),
        loop.make_optimizer(config.outer),
    )
    trained = jax.tree.map(lambda x: x + 0.5 * step, state.params)
    state = state.replace(params=trained, step=step)
    checkpointer = checkpoints.Checkpointer(workdir, config.checkpoint.max_to_keep)
    checkpointer.save(step, state)
    checkpointer.close()
    return trained


def test_restores_the_saved_parameters_and_step(tmp_path):
    config = _config()
    saved = _save_run(config, str(tmp_path))
    encoder = trained_encoder.load_trained_encoder(config, str(tmp_path))
    assert encoder.step == _STEP
    jax.tree.map(np.testing.assert_array_equal, encoder.params, saved)
    x = np.random.default_rng(0).normal(size=(5, 20)).astype(np.float32)
    features = encoder.apply_fn(encoder.params, x)  # [5, k]
    assert features.shape == (5, config.model.num_features)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No checkpoint in .*Train first"):
        trained_encoder.load_trained_encoder(_config(), str(tmp_path))
    assert not (tmp_path / "checkpoints").exists()


def test_a_different_encoder_is_refused(tmp_path):
    _save_run(_config(hidden_sizes=(16,)), str(tmp_path))
    with pytest.raises(ValueError, match="Cannot restore checkpoint"):
        trained_encoder.load_trained_encoder(_config(hidden_sizes=(32,)), str(tmp_path))


def test_restores_an_earlier_checkpoint_by_step(tmp_path):
    config = _config()
    first = _save_run(config, str(tmp_path), step=3)
    _save_run(config, str(tmp_path), step=_STEP)
    encoder = trained_encoder.load_trained_encoder(config, str(tmp_path), step=3)
    assert encoder.step == 3
    jax.tree.map(np.testing.assert_array_equal, encoder.params, first)
    with pytest.raises(FileNotFoundError, match=r"holds steps \[3, 7\]"):
        trained_encoder.load_trained_encoder(config, str(tmp_path), step=5)
