"""The input pipeline: the same episodes for any worker count and after a
resume, and errors that name the episode."""

import logging
import os

import jax
import numpy as np
import pytest
from test_train_resume import final_params, latest_checkpoint, small_config

from sparse_shared_jax import data, input_pipeline, parallel, train
from sparse_shared_jax.trainers import ground_truth


def vector_source():
    """The vector experiment's training episodes (4 tasks, 32 + 16 examples)."""
    config = small_config()
    dataset = data.ground_truth(config.data.name, **config.data.options.to_dict())
    return ground_truth.FactorEpisodes(
        ground_truth.make_episode_sampler(config, dataset)
    )


def episode_sharding():
    return parallel.TrainingLayout.create(4, 32, 16).episode


def host_episodes(stream, steps):
    sharding = episode_sharding()
    return [jax.tree.map(np.asarray, stream(step, sharding)) for step in steps]


class FailingSource:
    """Episodes of `source`; reading episode `bad_step` fails as `how` says:
    'raise' raises an OSError, 'exit' ends the worker process."""

    def __init__(self, source, bad_step, how):
        self.source, self.bad_step, self.how = source, bad_step, how
        self.input_shape = source.input_shape

    def draw(self, step):
        keys = self.source.draw(step)
        if step == self.bad_step:  # marks the episode's keys
            keys = keys._replace(support_keys=np.full_like(keys.support_keys, -1))
        return keys

    def read_inputs(self, keys):
        if np.any(keys < 0):
            if self.how == "exit":
                os._exit(3)
            raise OSError("record 17 of shard 2 is corrupt")
        return self.source.read_inputs(keys)


@pytest.mark.slow
def test_every_worker_count_gives_the_same_episodes():
    source, steps = vector_source(), range(5)
    expected = host_episodes(input_pipeline.EpisodeStream(source, 5, workers=0), steps)
    for workers in (1, 2):
        stream = input_pipeline.EpisodeStream(source, 5, workers=workers)
        got = host_episodes(stream, steps)
        stream.close()
        jax.tree.map(np.testing.assert_array_equal, got, expected)


def test_a_stream_started_at_a_step_continues_the_same_sequence():
    source = vector_source()
    expected = host_episodes(input_pipeline.EpisodeStream(source, 6), range(6))
    stream = input_pipeline.EpisodeStream(source, 6, workers=2)
    resumed = host_episodes(stream, range(3, 6))
    stream.close()
    jax.tree.map(np.testing.assert_array_equal, resumed, expected[3:])
    # Random access (any other step) restarts the stream there.
    stream = input_pipeline.EpisodeStream(source, 6)
    jumps = host_episodes(stream, [4, 1, 2])
    jax.tree.map(
        np.testing.assert_array_equal, jumps, [expected[4], expected[1], expected[2]]
    )


def test_device_episode_is_the_streams_episode():
    source = vector_source()
    expected = host_episodes(input_pipeline.EpisodeStream(source, 3), range(3))[2]
    got = input_pipeline.device_episode(source, 2, episode_sharding())
    jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, got), expected)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_failing_read_names_the_episode(workers):
    stream = input_pipeline.EpisodeStream(
        FailingSource(vector_source(), bad_step=2, how="raise"), 4, workers=workers
    )
    host_episodes(stream, range(2))
    with pytest.raises(
        input_pipeline.EpisodeReadError,
        match=r"episode 2 .*OSError: record 17 of shard 2 is corrupt.*checkpoint",
    ):
        host_episodes(stream, [2])
    stream.close()


def test_a_dying_worker_stops_the_stream_with_an_error():
    stream = input_pipeline.EpisodeStream(
        FailingSource(vector_source(), bad_step=1, how="exit"), 4, workers=1
    )
    with pytest.raises(RuntimeError, match="terminated unexpectedly with exit code 3"):
        host_episodes(stream, range(4))
    stream.close()


def test_more_workers_than_cores_is_accepted_and_logged(caplog):
    with caplog.at_level(logging.WARNING):
        input_pipeline.log_workers((os.cpu_count() or 1) + 1, 2)
    assert "more than this machine's" in caplog.text


@pytest.mark.slow
def test_training_with_workers_and_resuming_matches_training_without(tmp_path):
    train.train_and_evaluate(small_config(num_train_steps=8), str(tmp_path / "plain"))
    piped = str(tmp_path / "piped")
    train.train_and_evaluate(small_config(**{"input.workers": 2}), piped)
    train.train_and_evaluate(
        small_config(num_train_steps=8, **{"input.workers": 1}), piped
    )
    jax.tree.map(
        np.testing.assert_array_equal,
        final_params(piped, 8),
        final_params(tmp_path / "plain", 8),
    )


@pytest.mark.slow
def test_a_failing_read_stops_training_and_keeps_the_last_checkpoint(
    tmp_path, monkeypatch
):
    draw = ground_truth.FactorEpisodes.draw

    def failing_draw(self, step):
        if step == 4:
            raise OSError("disk read error")
        return draw(self, step)

    monkeypatch.setattr(ground_truth.FactorEpisodes, "draw", failing_draw)
    with pytest.raises(
        input_pipeline.EpisodeReadError,
        match=r"episode 4 .*training step 5\) failed: OSError: disk read error",
    ):
        train.train_and_evaluate(small_config(), str(tmp_path))
    assert latest_checkpoint(tmp_path) == 4
    assert not (tmp_path / "metrics.json").exists()
