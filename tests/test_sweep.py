"""Sweeps over ablations, seeds and grids, and their Markdown tables."""

import os

import pytest
from test_train import shrink

from sparse_shared_jax import bilevel, configs, sweep

EXPERIMENT = os.path.join(
    os.path.dirname(__file__), "..", "experiments", "nonlinear_mixing.py"
)


def tiny_get_config():
    get_config = configs.load_experiment(EXPERIMENT)

    def get_tiny_config(argument):
        return shrink(get_config(argument))

    return get_tiny_config


def refuse_training(*args, **kwargs):
    raise AssertionError("a finished run was trained again")


@pytest.mark.slow
def test_sweep_runs_each_ablation_and_seed_once_and_tabulates(tmp_path, monkeypatch):
    get_config = tiny_get_config()
    results = sweep.run_sweep(get_config, str(tmp_path), ["erm", "full"], seeds=2)
    assert sorted(os.listdir(tmp_path)) == [
        "erm_seed0",
        "erm_seed1",
        "full_seed0",
        "full_seed1",
    ]
    assert [len(runs) for runs in results.values()] == [2, 2]
    # The ablations differ where they should: erm has no sparsity penalty.
    assert results["erm"][0]["train/active_features"] == 10.0

    def fail(argument):
        raise AssertionError(f"finished run {argument} was repeated")

    again = sweep.run_sweep(fail, str(tmp_path), ["erm", "full"], seeds=2)
    assert again == results
    # Tabulating only finished runs: seed 2 was never trained, so it is left out.
    finished = sweep.run_sweep(
        fail, str(tmp_path), ["erm", "full"], seeds=3, train_missing=False
    )
    assert finished == results
    # Re-evaluating runs the finished runs' final evaluation only.
    evaluated = []

    def count(argument):
        evaluated.append(argument)
        return get_config(argument)

    monkeypatch.setattr(bilevel, "train_step", refuse_training)
    again = sweep.run_sweep(
        count, str(tmp_path), ["full"], seeds=2, reevaluate=True, train_missing=False
    )
    assert evaluated == ["full,seed=0", "full,seed=1"]
    for key, value in results["full"][0].items():
        if key.startswith("eval/"):
            assert again["full"][0][key] == pytest.approx(value), key

    table = sweep.markdown_table(results).splitlines()
    assert table[0].startswith("| run | seeds | DCI D | DCI C")
    assert table[2].startswith("| erm | 2 | ")
    assert len(table) == 4 and all(" ± " in line for line in table[2:])


@pytest.mark.slow
def test_grid_runs_every_combination_in_its_own_workdir(tmp_path):
    assert sweep.grid_cells(["rho=0,0.9", "share_weight=0.1"]) == [
        "rho=0,share_weight=0.1",
        "rho=0.9,share_weight=0.1",
    ]
    assert sweep.grid_cells([]) == [""]
    seen = []
    get_tiny_config = tiny_get_config()

    def get_config(argument):
        seen.append(argument)
        return get_tiny_config(argument)

    results = sweep.run_sweep(
        get_config,
        str(tmp_path),
        ["full"],
        seeds=1,
        grid=["share_weight=0,0.3", "inner.alpha=0.2"],
        argument="rho=0.5",
    )
    assert sorted(os.listdir(tmp_path)) == [
        "full_share_weight=0.3_inner.alpha=0.2_seed0",
        "full_share_weight=0_inner.alpha=0.2_seed0",
    ]
    assert seen == [
        "full,seed=0,share_weight=0,inner.alpha=0.2,rho=0.5",
        "full,seed=0,share_weight=0.3,inner.alpha=0.2,rho=0.5",
    ]
    assert list(results) == [
        "full, share_weight=0,inner.alpha=0.2",
        "full, share_weight=0.3,inner.alpha=0.2",
    ]
    table = sweep.markdown_table(results)
    assert "| full, share_weight=0.3,inner.alpha=0.2 | 1 | " in table


def test_first_seed_shifts_the_seeds_and_their_workdirs(tmp_path, monkeypatch):
    trained = []

    def record_training(config, workdir):
        trained.append((config, os.path.basename(workdir)))
        return {"seed": config}

    monkeypatch.setattr(sweep.train, "train_and_evaluate", record_training)
    results = sweep.run_sweep(
        lambda argument: argument, str(tmp_path), ["full"], seeds=2, first_seed=1
    )
    assert trained == [
        ("full,seed=1", "full_seed1"),
        ("full,seed=2", "full_seed2"),
    ]
    assert results == {"full": [{"seed": "full,seed=1"}, {"seed": "full,seed=2"}]}


@pytest.mark.parametrize("entry", ["rho", "rho=", "=0.1"])
def test_bad_grid_entries_are_named(entry):
    with pytest.raises(ValueError, match="--grid"):
        sweep.grid_cells([entry])
