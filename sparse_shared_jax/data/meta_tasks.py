"""Meta-training tasks from the labels of a real dataset.

On real data there are no factors to draw tasks from; a task is built from a
label field the dataset stores for every example (a `BenchmarkSpec`'s
`meta_labels`, e.g. CelebA's attributes or Waterbirds' species):

* a binary field (values 0/1, e.g. CelebA's ``Smiling``) is one binary task;
* a field with more values (e.g. Waterbirds' 200 ``species``) gives a task
  per subset of C of its values: class c of the task is the c-th value of
  the subset in increasing order (C = 2 for binary heads, the config's
  num_classes for softmax heads).

Each episode draws T tasks (fields uniformly, without repetition while T
does not exceed the number of fields; then a random subset of the field's
values) and, for every task, class-balanced support and query sets that do
not overlap (n_s and n_q split as evenly as possible over the C classes).
Balanced sets keep rare labels learnable and give every support set all its
classes, which the inner problem's unpenalised bias needs. A class with too
few examples for its share is drawn with replacement. The episode is a
function of (seed, step), so a resumed run sees the same data order.

    sampler = MetaTaskSampler(labels, ("Smiling", "Young"), num_tasks=2,
                              support_size=8, query_size=8)
    draw = sampler(step)  # indices into the split, and the task labels
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class MetaTask:
    """One task: which values of which label field are its classes.

    Attributes:
      field: the label field, e.g. 'Smiling' or 'species'.
      values: the field values of classes 0..C-1, increasing.
    """

    field: str
    values: tuple[int, ...]

    @property
    def name(self) -> str:
        """'Smiling' for a binary field, 'species: 3 vs 17' for a subset."""
        if self.values == (0, 1):
            return self.field
        return f"{self.field}: " + " vs ".join(str(v) for v in self.values)


class MetaEpisodeDraw(NamedTuple):
    """An episode as example indices and task labels (inputs read later).

    Attributes:
      support_index: int64 [T, n_s], rows of the split.
      support_y: int32 [T, n_s], classes in [0, C).
      query_index: int64 [T, n_q], rows of the split, none in the support set.
      query_y: int32 [T, n_q].
      tasks: the T tasks.
    """

    support_index: np.ndarray
    support_y: np.ndarray
    query_index: np.ndarray
    query_y: np.ndarray
    tasks: tuple[MetaTask, ...]


def _shares(total: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """int [C] summing to `total`, as equal as possible (extras to random classes)."""
    shares = np.full(num_classes, total // num_classes)
    shares[rng.permutation(num_classes)[: total % num_classes]] += 1
    return shares


class MetaTaskSampler:
    """Draws episodes of label-field tasks deterministically from (seed, step)."""

    def __init__(
        self,
        labels: Mapping[str, np.ndarray],
        fields: Sequence[str],
        *,
        num_tasks: int,
        support_size: int,
        query_size: int,
        num_classes: int = 2,
        seed: int = 0,
    ):
        """Indexes the examples of every class of every field.

        Args:
          labels: field -> int [n], the split's label columns.
          fields: the fields tasks are built from (keys of `labels`).
          num_tasks: T >= 1.
          support_size: n_s >= num_classes.
          query_size: n_q >= 1.
          num_classes: C >= 2, classes per task.
          seed: the run's data seed.

        Raises:
          ValueError: naming the field or argument that cannot give tasks,
            e.g. a field with fewer than C distinct values.
        """
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}.")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}.")
        if support_size < num_classes:
            raise ValueError(
                f"support_size must be >= num_classes={num_classes} (every class "
                f"in every support set), got {support_size}."
            )
        if query_size < 1:
            raise ValueError(f"query_size must be >= 1, got {query_size}.")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}.")
        if not fields:
            raise ValueError("fields must name at least one label field.")
        # field -> (its values, the example rows of each value).
        self._classes: dict[str, tuple[np.ndarray, list[np.ndarray]]] = {}
        for field in fields:
            if field not in labels:
                raise ValueError(
                    f"No label field {field!r}; the split has {sorted(labels)}."
                )
            column = np.asarray(labels[field])
            values = np.unique(column)
            if len(values) < num_classes:
                raise ValueError(
                    f"The label field {field!r} takes {len(values)} value(s) "
                    f"({values.tolist()}) in this split; a task needs "
                    f"{num_classes}. Drop it from the task fields."
                )
            self._classes[field] = (
                values,
                [np.flatnonzero(column == value) for value in values],
            )
        self.fields = tuple(fields)
        self.num_tasks = num_tasks
        self.support_size = support_size
        self.query_size = query_size
        self.num_classes = num_classes
        self.seed = seed

    def __call__(self, step: int) -> MetaEpisodeDraw:
        """The episode of training step `step` (>= 0): a function of (seed, step)."""
        return self.draw(self.rng(step))

    def rng(self, step: int) -> np.random.Generator:
        """The generator of training step `step` (>= 0)."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}.")
        return np.random.default_rng([self.seed, int(step)])

    def draw(self, rng: np.random.Generator) -> MetaEpisodeDraw:
        """Draws T tasks and their balanced, disjoint support and query rows."""
        replace = self.num_tasks > len(self.fields)
        chosen = rng.choice(len(self.fields), size=self.num_tasks, replace=replace)
        tasks, support, query = [], [], []
        for field_index in chosen:
            field = self.fields[field_index]
            values, rows_of_value = self._classes[field]
            picked = np.sort(
                rng.choice(len(values), size=self.num_classes, replace=False)
            )
            tasks.append(MetaTask(field, tuple(int(values[i]) for i in picked)))
            rows = [rows_of_value[i] for i in picked]
            support_shares = _shares(self.support_size, self.num_classes, rng)
            query_shares = _shares(self.query_size, self.num_classes, rng)
            support.append(([], []))
            query.append(([], []))
            for label, (class_rows, n_s, n_q) in enumerate(
                zip(rows, support_shares, query_shares, strict=True)
            ):
                drawn = rng.choice(
                    class_rows, size=n_s + n_q, replace=len(class_rows) < n_s + n_q
                )
                support[-1][0].append(drawn[:n_s])
                support[-1][1].append(np.full(n_s, label))
                query[-1][0].append(drawn[n_s:])
                query[-1][1].append(np.full(n_q, label))

        def stack(parts):  # per task: shuffled rows [n] and labels [n]
            rows, labels = [], []
            for task_rows, task_labels in parts:
                task_rows = np.concatenate(task_rows)
                order = rng.permutation(len(task_rows))
                rows.append(task_rows[order])
                labels.append(np.concatenate(task_labels)[order])
            return np.stack(rows).astype(np.int64), np.stack(labels).astype(np.int32)

        support_index, support_y = stack(support)
        query_index, query_y = stack(query)
        return MetaEpisodeDraw(
            support_index, support_y, query_index, query_y, tuple(tasks)
        )


def check_task_fields(
    fields: Sequence[str],
    meta_labels: Sequence[str],
    *,
    allow_label: bool,
    allow_attribute: bool,
    benchmark: str,
) -> None:
    """Refuses task fields a user may not meta-train on.

    Allowed are the benchmark's meta labels; 'label' (the target) only with
    `allow_label`, 'attribute' (the spurious attribute or domain, which the
    evaluation groups are made of) only with `allow_attribute`. Every other
    field ('group', evaluation-only fields such as CivilComments'
    ``mentions_*``, 'id') is refused.

    Raises:
      ValueError: naming the field, why it is refused and the config switch.
    """
    if not fields:
        raise ValueError(
            f"config.data.task_fields is empty; {benchmark}'s meta labels are "
            f"{tuple(meta_labels) or 'none'}."
        )
    for field in fields:
        if field in meta_labels:
            continue
        if field == "label":
            if not allow_label:
                raise ValueError(
                    f"config.data.task_fields holds 'label', the target of "
                    f"{benchmark}'s transfer evaluation; set "
                    "config.data.allow_label_tasks=True to meta-train on it."
                )
            continue
        if field == "attribute":
            if not allow_attribute:
                raise ValueError(
                    f"config.data.task_fields holds 'attribute', {benchmark}'s "
                    "spurious attribute / domain that the evaluation groups are "
                    "made of; tasks on it are refused unless "
                    "config.data.allow_attribute_tasks=True says so explicitly."
                )
            continue
        raise ValueError(
            f"config.data.task_fields holds {field!r}, which is not a meta label "
            f"of {benchmark} (those are {tuple(meta_labels) or 'none'}; 'label' "
            "and 'attribute' need an explicit config switch)."
        )
