"""benchmarks/factor_probe.py on codes with known answers."""

import importlib.util
import pathlib

import numpy as np

_PATH = pathlib.Path(__file__).parent.parent / "benchmarks" / "factor_probe.py"
_SPEC = importlib.util.spec_from_file_location("factor_probe", _PATH)
factor_probe = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(factor_probe)


def test_a_code_of_the_factors_scores_one_and_an_xor_of_them_chance():
    rng = np.random.default_rng(0)
    factors = rng.integers(0, [8, 2, 2], size=(2000, 3))
    # The features hold factors 0 and 1 (and noise), not factor 2, which is
    # an XOR of factor 1 and factor 0's upper half: linearly invisible.
    factors[:, 2] = (factors[:, 0] >= 4) ^ factors[:, 1]
    features = np.stack(
        [factors[:, 0], factors[:, 1], rng.normal(size=2000)], axis=1
    ).astype(float)
    scores = factor_probe.factor_scores(features, factors, (8, 2, 2))
    (corr0, probe0), (corr1, probe1), (corr2, probe2) = scores
    np.testing.assert_allclose([corr0, corr1], 1.0)
    assert probe0 > 0.99 and probe1 > 0.99
    assert corr2 < 0.1 and probe2 < 0.6
