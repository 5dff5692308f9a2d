"""The ablation sweep and its Markdown table."""

import os

from sparse_shared_jax import ablation

EXPERIMENT = os.path.join(
    os.path.dirname(__file__), "..", "experiments", "nonlinear_mixing.py"
)


def tiny_get_config():
    get_config = ablation.load_experiment(EXPERIMENT)

    def get_tiny_config(argument):
        config = get_config(argument)
        config.num_train_steps = 2
        config.episode.num_tasks = 2
        config.episode.support_size = 16
        config.episode.query_size = 8
        config.eval.num_samples = 200
        return config

    return get_tiny_config


def test_sweep_runs_each_ablation_and_seed_once_and_tabulates(tmp_path):
    get_config = tiny_get_config()
    results = ablation.run_sweep(get_config, str(tmp_path), ["erm", "full"], seeds=2)
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

    again = ablation.run_sweep(fail, str(tmp_path), ["erm", "full"], seeds=2)
    assert again == results
    # Tabulating only finished runs: seed 2 was never trained, so it is left out.
    finished = ablation.run_sweep(
        fail, str(tmp_path), ["erm", "full"], seeds=3, train_missing=False
    )
    assert finished == results

    table = ablation.markdown_table(results).splitlines()
    assert table[0].startswith("| ablation | seeds | DCI D | DCI C")
    assert table[2].startswith("| erm | 2 | ")
    assert len(table) == 4 and all(" ± " in line for line in table[2:])
