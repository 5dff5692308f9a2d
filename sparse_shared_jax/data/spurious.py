"""A generated spurious-correlation benchmark from the 3D-Shapes-style scenes.

The scenes of `SyntheticShapes3D`, with a binary target and a binary
spurious attribute read off two of the six factors:

* label: the object's shape, binarised: 0 for cube and cylinder, 1 for
  sphere and capsule (``shape >= 2``);
* attribute: the floor's hue in two halves of the hue circle: 0 for hues
  0.0-0.4 (red to green), 1 for hues 0.5-0.9 (cyan to magenta)
  (``floor_hue >= 5``);
* group: ``2 * label + attribute`` (4 groups).

Those are the defaults; `label_factor` and `attribute_factor` choose any two
different factors with an even number of values, each binarised at the
middle of its values (e.g. ``label_factor='scale'``: objects of scale
0.75-0.96 against 1.04-1.25, a subtler cue than a hue).

Three fixed, labelled splits are drawn from `split_seed`:

* ``'train'``: the biased training distribution. Labels are balanced and the
  attribute equals the label on exactly round(agreement * n / 2) examples
  of each class (95% by default), so the floor hue predicts the label
  almost as well as the shape does.
* ``'validation'`` and ``'test'``: label and attribute independent, every
  group exactly a quarter of the split.

In every split the other four factors, and the shape and floor hue within
their halves, are uniform and independent.

Meta-training sees the training split's images only. `SpuriousShapes3D`
is a `GroundTruthDataset` whose `sample_factors` serves two distributions,
told apart by the `correlation` argument that the episode sampler passes:

* ``correlation == 0`` (the default): uniform, independent factors over the
  whole grid. The final disentanglement metrics (`evaluate.
  representation_metrics` calls ``sample_factors(num, rng)``), the task
  distribution's reference sample (medians of task scores) and the held-out
  episode of the final evaluation (``correlation=0.0``) all use this.
* ``correlation == 2 * agreement - 1`` (0.9 by default): rows drawn with
  replacement from the training split's factors. For two balanced binary
  variables the correlation is P(agree) - P(disagree) = 2 * agreement - 1,
  so this value is the label-attribute correlation of the training split.
  Any other value is refused, so a config cannot silently train on a
  distribution other than the training split.

Register-on-import: importing this module registers the dataset as
``'spurious_shapes3d'`` for `data.ground_truth` and configs.
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from sparse_shared_jax.data.ground_truth import (
    GroundTruthDataset,
)
from sparse_shared_jax.data.shapes3d import SyntheticShapes3D

DATASET_NAME = "spurious_shapes3d"  # registered in data/__init__.py
LABEL_FACTOR = "shape"
ATTRIBUTE_FACTOR = "floor_hue"
NUM_GROUPS = 4
SPLITS = ("train", "validation", "test")


def _half(factor: str, dataset=SyntheticShapes3D) -> tuple[int, int]:
    """(column, values per half) of a factor of `dataset` (a ground-truth
    dataset or its class) binarised at the middle of its values; the factor
    must have an even number of values."""
    if factor not in dataset.factor_names:
        raise ValueError(
            f"Unknown factor {factor!r}; choose one of {dataset.factor_names}."
        )
    column = dataset.factor_names.index(factor)
    size = dataset.factor_sizes[column]
    if size % 2:
        raise ValueError(
            f"The factor {factor!r} has an odd number of values ({size}), so it "
            "has no two equal halves to binarise; choose a factor with an even "
            "number of values."
        )
    return column, size // 2


def binarised(
    factors: np.ndarray, factor: str, dataset=SyntheticShapes3D
) -> np.ndarray:
    """int [n, K] factor indices -> int32 [n]: 1 where `factor` is in the
    upper half of its values (e.g. shape: sphere or capsule)."""
    column, half = _half(factor, dataset)
    return (np.asarray(factors)[:, column] >= half).astype(np.int32)


def labels_of(factors: np.ndarray, factor: str = LABEL_FACTOR) -> np.ndarray:
    """Binary target: int [n, 6] factor indices -> int32 [n] (default: the
    shape, sphere/capsule = 1)."""
    return binarised(factors, factor)


def attributes_of(factors: np.ndarray, factor: str = ATTRIBUTE_FACTOR) -> np.ndarray:
    """Binary spurious attribute: int [n, 6] -> int32 [n] (default: the floor
    hue, >= 0.5 = 1)."""
    return binarised(factors, factor)


def groups_of(labels: np.ndarray, attributes: np.ndarray) -> np.ndarray:
    """Group ids 2 * label + attribute: int [n], int [n] -> int32 [n] in [0, 4)."""
    return (2 * np.asarray(labels) + np.asarray(attributes)).astype(np.int32)


def factors_for(
    labels: np.ndarray,
    attributes: np.ndarray,
    rng: np.random.Generator,
    label_factor: str = LABEL_FACTOR,
    attribute_factor: str = ATTRIBUTE_FACTOR,
    dataset=SyntheticShapes3D,
) -> np.ndarray:
    """Draws factors with the given label and attribute for every example.

    The label factor is uniform within the label's half of its values, the
    attribute factor within the attribute's half, the other factors uniform
    over their grids; all independent.

    Args:
      labels: int [n] in {0, 1}.
      attributes: int [n] in {0, 1}.
      rng: a NumPy generator.
      label_factor, attribute_factor: the factors they binarise.
      dataset: whose factors (default `SyntheticShapes3D`).

    Returns:
      int64 [n, K] factor indices of `dataset`.
    """
    labels, attributes = np.asarray(labels), np.asarray(attributes)
    sizes = np.asarray(dataset.factor_sizes)
    factors = rng.integers(0, sizes, size=(len(labels), sizes.size), dtype=np.int64)
    for factor, halves in ((label_factor, labels), (attribute_factor, attributes)):
        column, half = _half(factor, dataset)
        factors[:, column] = halves * half + rng.integers(0, half, size=len(labels))
    return factors


def group_counts(num: int, agreement: float) -> np.ndarray:
    """Exact examples per group of a split with balanced labels.

    Args:
      num: split size (>= 4).
      agreement: fraction of each class whose attribute equals the label,
        in [0.5, 1]; 0.5 makes label and attribute independent.

    Returns:
      int [4], indexed by group 2 * label + attribute, summing to `num`.
    """
    if num < NUM_GROUPS:
        raise ValueError(f"A split needs at least {NUM_GROUPS} examples; got {num}.")
    if not 0.5 <= agreement <= 1.0:
        raise ValueError(f"agreement must be in [0.5, 1]; got {agreement}.")
    counts = np.zeros(NUM_GROUPS, dtype=np.int64)
    for label, class_size in enumerate((num // 2, num - num // 2)):
        agreeing = int(round(agreement * class_size))
        counts[groups_of(label, label)] = agreeing
        counts[groups_of(label, 1 - label)] = class_size - agreeing
    return counts


def sample_split_factors(
    num: int,
    agreement: float,
    rng: np.random.Generator,
    label_factor: str = LABEL_FACTOR,
    attribute_factor: str = ATTRIBUTE_FACTOR,
    dataset=SyntheticShapes3D,
) -> np.ndarray:
    """Factors of a split with exact group counts (`group_counts`), shuffled.

    Returns:
      int64 [num, K].
    """
    groups = np.repeat(np.arange(NUM_GROUPS), group_counts(num, agreement))
    groups = rng.permutation(groups)  # [num]
    return factors_for(
        groups // 2, groups % 2, rng, label_factor, attribute_factor, dataset
    )


@dataclasses.dataclass(frozen=True)
class SpuriousSplit:
    """A labelled split of the benchmark (`data.labelled.LabelledSplit`).

    Attributes:
      name: 'train', 'validation' or 'test'.
      images: [n, *observation_shape], the observations (float32 scenes
        [n, 64, 64, 3]; int32 token ids for sentences).
      factors: int64 [n, K], their factor indices.
      labels: int32 [n] columns: 'label' (the target, by default the
        binarised shape), 'attribute' (the spurious attribute, by default
        the binarised floor hue) and 'group' (2 * label + attribute).
    """

    name: str
    images: np.ndarray
    factors: np.ndarray
    labels: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.images)

    def inputs(self, rows: np.ndarray) -> np.ndarray:
        """The observations of `rows` (int [b]): [b, *observation_shape]."""
        return self.images[np.asarray(rows, dtype=np.int64)]


class SpuriousBenchmark(GroundTruthDataset):
    """A ground-truth dataset with a biased training split (module doc).

    Args:
      base: the dataset whose factors and observations these are.
      name: the registered name, for messages.
      agreement: fraction of each class of the training split whose
        attribute equals the label, in [0.5, 1).
      train_size, validation_size, test_size: examples per split; each
        split must leave every group at least one example.
      split_seed: seed of the three splits' factors (fixed across training
        seeds, like a dataset on disk).
      label_factor, attribute_factor: the two different factors of `base`,
        each with an even number of values, that the target and the
        spurious attribute binarise (upper half = 1).
    """

    def __init__(
        self,
        base: GroundTruthDataset,
        name: str,
        agreement: float,
        train_size: int,
        validation_size: int,
        test_size: int,
        split_seed: int,
        label_factor: str,
        attribute_factor: str,
    ):
        if not 0.5 <= agreement < 1.0:
            raise ValueError(
                f"agreement must be in [0.5, 1) (1 would leave the minority "
                f"groups empty); got {agreement}."
            )
        for factor in (label_factor, attribute_factor):
            _half(factor, base)  # raises for an unknown or odd-sized factor
        if label_factor == attribute_factor:
            raise ValueError(
                f"label_factor and attribute_factor are both {label_factor!r}; "
                "choose two different factors."
            )
        self.name = name
        self.factor_names, self.factor_sizes = base.factor_names, base.factor_sizes
        self.observation_shape = base.observation_shape
        self.observation_dtype = base.observation_dtype
        self.agreement = agreement
        self.label_factor, self.attribute_factor = label_factor, attribute_factor
        self._base = base
        sizes = {"train": train_size, "validation": validation_size, "test": test_size}
        agreements = {"train": agreement, "validation": 0.5, "test": 0.5}
        for split in SPLITS:
            counts = group_counts(sizes[split], agreements[split])
            if counts.min() == 0:
                raise ValueError(
                    f"The {split} split ({sizes[split]} examples at agreement "
                    f"{agreements[split]}) leaves group {int(counts.argmin())} "
                    f"empty (examples per group {counts.tolist()}); raise "
                    f"{split}_size or lower the agreement."
                )
        self._split_factors = {
            split: sample_split_factors(
                sizes[split],
                agreements[split],
                np.random.default_rng([split_seed, index]),
                label_factor,
                attribute_factor,
                base,
            )
            for index, split in enumerate(SPLITS)
        }  # split -> int64 [n, K]

    @property
    def train_correlation(self) -> float:
        """The label-attribute correlation of the training split, 2 p - 1."""
        return 2.0 * self.agreement - 1.0

    def sample_factors(
        self, num: int, rng: np.random.Generator | int, correlation: float = 0.0
    ) -> np.ndarray:
        """Uniform factors (correlation 0) or training-split rows (module doc).

        Args:
          num: number of samples.
          rng: a NumPy generator or an integer seed.
          correlation: 0 for uniform factors over the grid, or
            `train_correlation` for the biased training distribution.

        Returns:
          int64 [num, 6].

        Raises:
          ValueError: if `correlation` is neither.
        """
        rng = np.random.default_rng(rng)
        if correlation == 0.0:
            return super().sample_factors(num, rng)
        if not np.isclose(correlation, self.train_correlation):
            raise ValueError(
                f"{self.name} serves uniform factors (correlation 0) or its "
                f"training split (correlation 2 * agreement - 1 = "
                f"{self.train_correlation:.4g}); got correlation {correlation}. "
                "Set config.data.correlation to one of these."
            )
        train = self._split_factors["train"]
        return train[rng.integers(0, len(train), size=num)]

    def observations(self, factors: np.ndarray) -> np.ndarray:
        """The base dataset's: int [num, K] -> [num, *observation_shape]."""
        return self._base.observations(factors)

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        """The base dataset's: int [num, K] -> float [num, K]."""
        return self._base.factor_values(factors)

    def check_encoder(self, model: ml_collections.ConfigDict) -> None:
        """The base dataset's (see GroundTruthDataset.check_encoder)."""
        self._base.check_encoder(model)

    def split(self, name: str) -> SpuriousSplit:
        """Renders the labelled split `name` ('train', 'validation' or 'test')."""
        if name not in SPLITS:
            raise ValueError(f"Unknown split {name!r}; choose one of {SPLITS}.")
        factors = self._split_factors[name]
        labels = binarised(factors, self.label_factor, self._base)
        attributes = binarised(factors, self.attribute_factor, self._base)
        return SpuriousSplit(
            name=name,
            images=self.observations(factors),
            factors=factors,
            labels={
                "label": labels,
                "attribute": attributes,
                "group": groups_of(labels, attributes),
            },
        )

    def labelled_splits(self) -> dict[str, SpuriousSplit]:
        """Every split, rendered: name -> SpuriousSplit (for transfer)."""
        return {name: self.split(name) for name in SPLITS}


class SpuriousShapes3D(SpuriousBenchmark):
    """`SyntheticShapes3D` scenes with a biased training split (module doc).

    Args:
      antialias: sub-pixels per pixel axis of the renderer.
      Others as `SpuriousBenchmark`'s.
    """

    def __init__(
        self,
        antialias: int = 1,
        agreement: float = 0.95,
        train_size: int = 4800,
        validation_size: int = 1000,
        test_size: int = 2000,
        split_seed: int = 0,
        label_factor: str = LABEL_FACTOR,
        attribute_factor: str = ATTRIBUTE_FACTOR,
    ):
        super().__init__(
            SyntheticShapes3D(antialias=antialias),
            DATASET_NAME,
            agreement,
            train_size,
            validation_size,
            test_size,
            split_seed,
            label_factor,
            attribute_factor,
        )
