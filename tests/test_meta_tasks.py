"""Tests of meta-training tasks built from a real dataset's label fields."""

import numpy as np
import pytest

from sparse_shared_jax.data import meta_tasks


def _labels(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "Smiling": (rng.random(n) < 0.3).astype(np.int32),  # rare positives
        "Young": (rng.random(n) < 0.7).astype(np.int32),
        "species": rng.integers(0, 12, n).astype(np.int32),
    }


def test_episode_is_a_function_of_seed_and_step():
    labels = _labels()
    make = lambda seed: meta_tasks.MetaTaskSampler(  # noqa: E731
        labels, ("Smiling", "species"), num_tasks=3, support_size=8, query_size=6,
        seed=seed,
    )  # fmt: skip
    a, b = make(0)(5), make(0)(5)
    for x, y in zip(a[:4], b[:4], strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.tasks == b.tasks
    assert not np.array_equal(make(0)(6).support_index, a.support_index)
    assert not np.array_equal(make(1)(5).support_index, a.support_index)


def test_support_and_query_are_balanced_disjoint_and_labelled_by_the_field():
    labels = _labels()
    sampler = meta_tasks.MetaTaskSampler(
        labels, ("Smiling", "Young", "species"), num_tasks=3, support_size=9,
        query_size=4,
    )  # fmt: skip
    for step in range(20):
        draw = sampler(step)
        assert draw.support_index.shape == (3, 9) and draw.query_index.shape == (3, 4)
        # Fields are not repeated while T <= the number of fields.
        assert len({task.field for task in draw.tasks}) == 3
        for t, task in enumerate(draw.tasks):
            for rows, y in (
                (draw.support_index[t], draw.support_y[t]),
                (draw.query_index[t], draw.query_y[t]),
            ):
                counts = np.bincount(y, minlength=2)
                assert counts.max() - counts.min() <= 1  # 9 -> 5/4, 4 -> 2/2
                # Class c is the c-th value of the task, increasing.
                values = np.asarray(task.values)
                np.testing.assert_array_equal(labels[task.field][rows], values[y])
            assert not set(draw.support_index[t]) & set(draw.query_index[t])


def test_multi_valued_field_gives_value_subsets_and_names():
    labels = _labels()
    sampler = meta_tasks.MetaTaskSampler(
        labels, ("species",), num_tasks=4, support_size=6, query_size=3,
        num_classes=3,
    )  # fmt: skip
    draw = sampler(0)
    for t, task in enumerate(draw.tasks):
        assert len(task.values) == 3 and list(task.values) == sorted(task.values)
        assert task.name.startswith("species: ")
        assert set(np.unique(draw.support_y[t])) == {0, 1, 2}
    assert meta_tasks.MetaTask("Smiling", (0, 1)).name == "Smiling"


def test_rare_classes_are_drawn_with_replacement():
    labels = {"rare": np.array([1, 0, 0, 0, 0, 0, 0, 0], np.int32)}
    draw = meta_tasks.MetaTaskSampler(
        labels, ("rare",), num_tasks=1, support_size=4, query_size=2
    )(0)
    positives = draw.support_index[0][draw.support_y[0] == 1]
    np.testing.assert_array_equal(positives, [0, 0])


@pytest.mark.parametrize(
    ("labels", "fields", "options", "message"),
    [
        ({"a": np.zeros(5)}, ("a",), {}, "takes 1 value"),
        ({"a": np.arange(5) % 2}, ("b",), {}, "No label field 'b'"),
        ({"a": np.arange(5) % 2}, ("a",), {"support_size": 1}, "support_size"),
        ({"a": np.arange(5) % 2}, ("a",), {"num_classes": 3}, "a task needs 3"),
    ],
)
def test_bad_settings_name_the_problem(labels, fields, options, message):
    settings = dict(num_tasks=2, support_size=4, query_size=2) | options
    with pytest.raises(ValueError, match=message):
        meta_tasks.MetaTaskSampler(labels, fields, **settings)


def test_evaluation_fields_are_refused_unless_allowed_explicitly():
    meta = ("Smiling", "Young")
    check = meta_tasks.check_task_fields
    check(meta, meta, allow_label=False, allow_attribute=False, benchmark="celeba")
    with pytest.raises(ValueError, match="allow_attribute_tasks"):
        check(("attribute",), meta, allow_label=True, allow_attribute=False,
              benchmark="celeba")  # fmt: skip
    check(("attribute",), meta, allow_label=False, allow_attribute=True,
          benchmark="celeba")  # fmt: skip
    with pytest.raises(ValueError, match="allow_label_tasks"):
        check(("label",), meta, allow_label=False, allow_attribute=False,
              benchmark="celeba")  # fmt: skip
    for field in ("group", "mentions_male", "Male"):
        with pytest.raises(ValueError, match="not a meta label"):
            check((field,), meta, allow_label=True, allow_attribute=True,
                  benchmark="celeba")  # fmt: skip
    with pytest.raises(ValueError, match="empty"):
        check((), (), allow_label=False, allow_attribute=False, benchmark="metashift")
