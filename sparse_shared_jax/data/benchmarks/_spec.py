"""What every distribution-shift benchmark loader declares about itself."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np

MODALITIES = ("image", "text")


@dataclasses.dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark's fields, groups and splits.

    Every loader yields examples (dicts) with the fields

      'image' (uint8 [H, W, 3]) or 'text' (str): the input;
      'label' (int): the target label, in [0, num_labels);
      'attribute' (int): the spurious attribute or domain, in
        [0, num_attributes);
      'group' (int): label * num_attributes + attribute, the evaluation group;
      'id' (str): the example's identifier in the original files;

    plus any extra label fields listed in `meta_labels` (fields a user may train
    meta-learning tasks on, never the evaluation attribute).

    Attributes:
      name: the registered name (also the TFDS builder name).
      modality: 'image' or 'text'.
      label_names: names of the target classes.
      attribute_names: names of the spurious attribute's values / domains.
      splits: the official split names, e.g. ('train', 'validation', 'test').
      shift: 'subpopulation' (report worst-group accuracy) or 'domain'
        (report out-of-distribution accuracy on held-out domains).
      meta_labels: extra per-example label fields usable as meta-training tasks.
      manual_download: how to obtain the files and where to put them.
      extra_scores: (name, score) pairs of the benchmark's own scores,
        reported next to average and worst-group accuracy; a score maps
        predictions int [n] and the label columns of the same examples to a
        float (e.g. CivilComments-WILDS' worst identity group).
    """

    name: str
    modality: str
    label_names: tuple[str, ...]
    attribute_names: tuple[str, ...]
    splits: tuple[str, ...]
    shift: str
    meta_labels: tuple[str, ...]
    manual_download: str
    extra_scores: tuple[
        tuple[str, Callable[[np.ndarray, Mapping[str, np.ndarray]], float]], ...
    ] = ()

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}.")
        if self.shift not in ("subpopulation", "domain"):
            raise ValueError("shift must be 'subpopulation' or 'domain'.")

    @property
    def num_groups(self) -> int:
        """Groups = label x attribute."""
        return len(self.label_names) * len(self.attribute_names)
