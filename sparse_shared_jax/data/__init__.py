"""Ground-truth datasets, task distributions and episode sampling.

from sparse_shared_jax import data

dataset = data.ground_truth("nonlinear_mixing", seed=0)
sampler = data.EpisodeSampler(
    dataset, num_tasks=16, support_size=64, query_size=64, label_type="binary"
)
episode = sampler(step)  # the same episode for the same (seed, step)
"""

from sparse_shared_jax.data.dsprites import SyntheticDSprites
from sparse_shared_jax.data.episodes import (
    Episode,
    EpisodeDraw,
    EpisodeSampler,
    sample_episode,
)
from sparse_shared_jax.data.ground_truth import (
    GroundTruthDataset,
    ground_truth,
    register_ground_truth,
    registered_names,
)
from sparse_shared_jax.data.nonlinear_mixing import NonlinearMixing
from sparse_shared_jax.data.sentences import GeneratedSentences, SpuriousSentences
from sparse_shared_jax.data.shapes3d import SyntheticShapes3D
from sparse_shared_jax.data.spurious import SpuriousShapes3D
from sparse_shared_jax.data.tasks import (
    LABEL_TYPES,
    TaskDistribution,
    Tasks,
    sample_tasks,
    task_labels,
    task_scores,
)
from sparse_shared_jax.data.tfds_adapters import (
    TfdsDSprites,
    TfdsGroundTruth,
    TfdsShapes3D,
)

# Built-in ground-truth datasets.
register_ground_truth("nonlinear_mixing", NonlinearMixing)
register_ground_truth("synthetic_shapes3d", SyntheticShapes3D)
register_ground_truth("synthetic_dsprites", SyntheticDSprites)
# The spurious-correlation benchmark's scenes (see `spurious`).
register_ground_truth("spurious_shapes3d", SpuriousShapes3D)
# Generated sentences with known factors, and their spurious-token benchmark
# (see `sentences`).
register_ground_truth("sentences", GeneratedSentences)
register_ground_truth("spurious_sentences", SpuriousSentences)
# The real TFDS datasets, when prepared (see `tfds_adapters`).
register_ground_truth("tfds:shapes3d", TfdsShapes3D)
register_ground_truth("tfds:dsprites", TfdsDSprites)

__all__ = [
    "LABEL_TYPES",
    "Episode",
    "EpisodeDraw",
    "EpisodeSampler",
    "GeneratedSentences",
    "GroundTruthDataset",
    "NonlinearMixing",
    "SpuriousSentences",
    "SpuriousShapes3D",
    "SyntheticDSprites",
    "SyntheticShapes3D",
    "TaskDistribution",
    "Tasks",
    "TfdsDSprites",
    "TfdsGroundTruth",
    "TfdsShapes3D",
    "ground_truth",
    "register_ground_truth",
    "registered_names",
    "sample_episode",
    "sample_tasks",
    "task_labels",
    "task_scores",
]
