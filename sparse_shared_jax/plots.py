"""Figures a training run writes to its workdir: NumPy arrays in, PNG out.

Every function draws on its own `matplotlib.figure.Figure` rendered by the
Agg canvas, never through `pyplot`, so no global figure state is created or
leaked and nothing needs closing; it writes one PNG (creating the parent
directory of `path` if needed) and returns the path written. Inputs are
checked first and a bad shape raises ValueError naming the argument and the
shape expected.

* `plot_activation_matrix`: which features each task's head uses [T, k],
  optionally next to the true tasks x factors support [T, K].
* `plot_importance_matrix`: the DCI importance matrix [k, K].
* `plot_feature_vs_factor`: each factor against its matched feature.
* `plot_training_curves`: one small panel per logged metric.
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Colormap, ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.ticker import MaxNLocator

DPI = 120
UNMATCHED = -1  # `feature_to_factor` entry of a feature matched to no factor
MAX_ANNOTATED_CELLS = 200  # importance values are written in cells up to this
MAX_GRID_CELLS = 64  # cell borders are drawn up to this many rows / columns
MAX_TICK_LABELS = 40  # longer axes label every n-th row / column only
MAX_BOX_VALUES = 16  # factors with at most this many values get box plots
CELL_INCHES = 0.32  # heatmap cell size before clamping the figure size

# White is exactly zero (masked); the smallest non-zero value is a pale blue
# and the largest the darkest, so strength reads as darkness.
_ACTIVATION_CMAP = ListedColormap(
    matplotlib.colormaps["Blues"](np.linspace(0.18, 1.0, 256))
).with_extremes(bad="white")
_SUPPORT_CMAP = ListedColormap(["white", "0.3"])
_IMPORTANCE_CMAP = matplotlib.colormaps["Blues"]
_POINT_COLOUR = "#2b5d8a"

PathLike = str | os.PathLike


def plot_activation_matrix(
    activation: np.ndarray,
    path: PathLike,
    *,
    true_support: np.ndarray | None = None,
    factor_names: Sequence[str] | None = None,
    feature_to_factor: np.ndarray | None = None,
    title: str = "Feature activation per task",
) -> pathlib.Path:
    """Heatmap of which features each task's head uses.

    Exact zeros (unused features) are white; every positive value is drawn
    in colour, so a small activation never looks like an unused feature.

    Args:
      activation: [T, k] non-negative floats (or booleans), e.g. the row
        norms of each task's head W_t [k, C]; 0 means feature unused.
      path: PNG file to write.
      true_support: optional [T, K] boolean (or 0/1) mask of the factors each
        task depends on, drawn as a second panel sharing the task axis.
      factor_names: optional K factor names; default ``factor 0``, ...
      feature_to_factor: optional [k] ints, entry d the factor matched to
        feature d or -1 if none (e.g. from `metrics.mcc_matching`). Columns
        are then sorted by matched factor (unmatched last) and labelled
        ``f<d>: <factor name>``.
      title: figure title.

    Returns:
      The path written.
    """
    activation = _check_matrix(activation, "activation", "[T, k]", nonnegative=True)
    num_tasks, num_features = activation.shape
    if true_support is not None:
        true_support = _check_support(true_support, num_tasks)
    num_factors = _num_factors(factor_names, true_support, feature_to_factor)
    names = _factor_names(factor_names, num_factors)
    order, column_labels = _feature_columns(
        feature_to_factor, num_features, num_factors, names
    )

    panels = 1 if true_support is None else 2
    width_ratios = [num_features] + ([num_factors] if panels == 2 else [])
    fig = _new_figure(
        width=1.8 + CELL_INCHES * sum(width_ratios) + 1.2 * panels,
        height=2.0 + CELL_INCHES * num_tasks,
    )
    axes = fig.subplots(
        1, panels, sharey=True, width_ratios=width_ratios, squeeze=False
    )
    _draw_activation(
        axes[0, 0], activation, order, column_labels, feature_to_factor is not None
    )
    if true_support is not None:
        _draw_support(axes[0, 1], true_support, names)
    fig.suptitle(title)
    return _save(fig, path)


def plot_importance_matrix(
    importance: np.ndarray,
    path: PathLike,
    *,
    factor_names: Sequence[str] | None = None,
    feature_to_factor: np.ndarray | None = None,
    title: str = "DCI importance matrix",
) -> pathlib.Path:
    """Heatmap of the DCI importance of every feature for every factor.

    Values are written in the cells when there are at most
    `MAX_ANNOTATED_CELLS` of them. With a matching, rows are sorted by
    matched factor (unmatched last), so a disentangled representation shows
    a diagonal, and labelled ``f<d>: <factor name>``.

    Args:
      importance: [k, K] non-negative floats, e.g.
        `metrics.dci_importance_matrix(...).importance_matrix`.
      path: PNG file to write.
      factor_names: optional K factor names; default ``factor 0``, ...
      feature_to_factor: optional [k] ints, entry d the factor matched to
        feature d or -1 if none (e.g. from `metrics.mcc_matching`).
      title: figure title (e.g. with the D and C scores).

    Returns:
      The path written.
    """
    importance = _check_matrix(importance, "importance", "[k, K]", nonnegative=True)
    num_features, num_factors = importance.shape
    names = _factor_names(factor_names, num_factors)
    order, row_labels = _feature_columns(
        feature_to_factor, num_features, num_factors, names
    )
    fig = _new_figure(
        width=3.4 + CELL_INCHES * 1.6 * num_factors,
        height=2.0 + CELL_INCHES * num_features,
    )
    ax = fig.subplots()
    norm = _zero_based_norm(importance)
    image = _heatmap(ax, importance[order], _IMPORTANCE_CMAP, norm)
    if importance.size <= MAX_ANNOTATED_CELLS:
        _annotate_cells(ax, importance[order], norm)
    _label_axis(ax.xaxis, names, rotate=True)
    _label_axis(ax.yaxis, row_labels)
    ax.set_xlabel("factor")
    ax.set_ylabel(
        "feature: matched factor" if feature_to_factor is not None else "feature"
    )
    fig.colorbar(image, ax=ax, shrink=0.9, pad=0.02).set_label("importance")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_feature_vs_factor(
    codes: np.ndarray,
    factor_values: np.ndarray,
    feature_to_factor: np.ndarray,
    path: PathLike,
    *,
    factor_names: Sequence[str] | None = None,
    max_points: int = 2000,
) -> pathlib.Path:
    """One panel per factor: its matched feature against the factor's value.

    Factors with at most `MAX_BOX_VALUES` distinct values get a box plot of
    the feature per value (all samples) over a jittered strip of points;
    others get a scatter plot. At most `max_points` samples, the same
    deterministic subsample in every panel, are drawn as points. If several
    features are matched to a factor, the one most correlated with it is
    shown; factors matched to none get an empty panel saying so.

    Args:
      codes: [num, k] feature values.
      factor_values: [num, K] factor values (integer labels or floats).
      feature_to_factor: [k] ints, entry d the factor matched to feature d or
        -1 if none (e.g. from `metrics.mcc_matching`).
      path: PNG file to write.
      factor_names: optional K factor names; default ``factor 0``, ...
      max_points: the most samples drawn as points per panel (>= 1).

    Returns:
      The path written.
    """
    codes = _check_matrix(codes, "codes", "[num, k]")
    factor_values = _check_matrix(factor_values, "factor_values", "[num, K]")
    if len(factor_values) != len(codes):
        raise ValueError(
            f"`factor_values` must have shape [num, K] with num = {len(codes)} "
            f"rows like `codes`; got shape {factor_values.shape}."
        )
    num_factors = factor_values.shape[1]
    matching = _check_matching(feature_to_factor, codes.shape[1], num_factors)
    names = _factor_names(factor_names, num_factors)
    if isinstance(max_points, bool) or not isinstance(max_points, int | np.integer):
        raise ValueError(f"`max_points` must be an integer; got {max_points!r}.")
    if max_points < 1:
        raise ValueError(f"`max_points` must be at least 1; got {max_points}.")
    shown = _subsample(len(codes), max_points)  # [<= max_points]

    fig, axes = _panel_grid(num_factors, panel_width=3.3, panel_height=2.7)
    for factor, ax in enumerate(axes):
        candidates = np.flatnonzero(matching == factor)
        values = factor_values[:, factor]  # [num]
        if candidates.size == 0:
            _draw_unmatched(ax, names[factor])
            continue
        correlations = [_abs_correlation(codes[:, d], values) for d in candidates]
        feature = int(candidates[np.argmax(correlations)])
        _draw_feature_panel(ax, codes[:, feature], values, shown)
        ax.set_xlabel(names[factor])
        ax.set_ylabel(f"feature {feature}")
        ax.set_title(f"{names[factor]}: |r| = {max(correlations):.2f}")
    fig.suptitle("Matched feature against each factor")
    return _save(fig, path)


def plot_training_curves(
    history: Mapping[str, Sequence[tuple[float, float]]], path: PathLike
) -> pathlib.Path:
    """One small panel per logged metric against the training step.

    Panels share the step axis; empty series are skipped, and points are
    marked when a series is short enough to read them (a single point is
    drawn as a dot). With nothing to plot, the figure says so.

    Args:
      history: metric name -> sequence of (step, value) pairs, e.g.
        ``{'query_loss': [(0, 2.3), (100, 1.1)], 'grad_norm': [...]}``.
      path: PNG file to write.

    Returns:
      The path written.
    """
    series = _check_history(history)  # name -> [n, 2], sorted by step
    if not series:
        fig = _new_figure(width=4.0, height=3.0)
        fig.text(0.5, 0.5, "no metrics recorded yet", ha="center", va="center")
        return _save(fig, path)
    fig, axes = _panel_grid(len(series), panel_width=3.2, panel_height=2.2)
    for ax, (name, points) in zip(axes, series.items(), strict=True):
        steps, values = points[:, 0], points[:, 1]
        if len(points) == 1:  # a final evaluation: a point with its value
            ax.plot(steps, values, "o", color=_POINT_COLOUR, markersize=6)
            ax.annotate(
                f"{values[0]:.3g}",
                (steps[0], values[0]),
                xytext=(0, 7),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
        else:
            marker = "o" if len(points) <= 50 else None
            ax.plot(steps, values, color=_POINT_COLOUR, marker=marker, markersize=3)
        ax.set_title(f"{name.replace('_', ' ')}\n(last {values[-1]:.3g})", fontsize=8)
        ax.grid(alpha=0.3)
    _share_step_axis(axes, series.values())
    fig.suptitle("Training curves")
    return _save(fig, path)


# --- input checks ---------------------------------------------------------


def _check_matrix(
    array: np.ndarray, name: str, shape: str, *, nonnegative: bool = False
) -> np.ndarray:
    """Checks a non-empty, finite, numeric (or boolean) 2-D array -> float64."""
    array = np.asarray(array)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(
            f"`{name}` must be a non-empty 2-D array {shape}; got shape {array.shape}."
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"`{name}` must be numeric; got dtype {array.dtype}.")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    if nonnegative and np.any(array < 0):
        raise ValueError(f"`{name}` must be non-negative; got min {array.min():g}.")
    return array


def _check_support(true_support: np.ndarray, num_tasks: int) -> np.ndarray:
    """Checks a 0/1 mask [T, K] with one row per task -> bool."""
    support = _check_matrix(true_support, "true_support", "[T, K]")
    if len(support) != num_tasks:
        raise ValueError(
            f"`true_support` must have shape [T, K] with T = {num_tasks} rows like "
            f"`activation`; got shape {support.shape}."
        )
    if not np.all((support == 0) | (support == 1)):
        raise ValueError("`true_support` must hold booleans or 0/1 values.")
    return support.astype(bool)


def _check_matching(
    feature_to_factor: np.ndarray, num_features: int, num_factors: int
) -> np.ndarray:
    """Checks a feature -> factor matching [k] with entries in [-1, K)."""
    matching = np.asarray(feature_to_factor)
    if matching.shape != (num_features,):
        raise ValueError(
            f"`feature_to_factor` must have shape ({num_features},), one entry per "
            f"feature; got shape {matching.shape}."
        )
    if not np.issubdtype(matching.dtype, np.integer):
        raise ValueError(
            f"`feature_to_factor` must hold integers; got dtype {matching.dtype}."
        )
    if np.any((matching < UNMATCHED) | (matching >= num_factors)):
        raise ValueError(
            f"`feature_to_factor` entries must lie in [-1, {num_factors}) "
            f"(-1 = unmatched); got {matching.tolist()}."
        )
    return matching.astype(np.int64)


def _num_factors(
    factor_names: Sequence[str] | None,
    true_support: np.ndarray | None,
    feature_to_factor: np.ndarray | None,
) -> int:
    """Number of factors K implied by the names, the support or the matching."""
    if (
        factor_names is not None
        and true_support is not None
        and len(factor_names) != true_support.shape[1]
    ):
        raise ValueError(
            f"`factor_names` must have {true_support.shape[1]} entries, one per "
            f"column of `true_support`; got {len(factor_names)}."
        )
    if factor_names is not None:
        return len(factor_names)
    if true_support is not None:
        return true_support.shape[1]
    if feature_to_factor is not None and np.size(feature_to_factor):
        return max(int(np.max(feature_to_factor)) + 1, 0)
    return 0


def _factor_names(factor_names: Sequence[str] | None, num_factors: int) -> list[str]:
    """The given K factor names as strings, or ``factor 0``, ``factor 1``, ..."""
    if factor_names is None:
        return [f"factor {k}" for k in range(num_factors)]
    if isinstance(factor_names, str) or len(factor_names) != num_factors:
        raise ValueError(
            f"`factor_names` must be a sequence of {num_factors} names, one per "
            f"factor; got {factor_names!r}."
        )
    return [str(name) for name in factor_names]


def _check_history(
    history: Mapping[str, Sequence[tuple[float, float]]],
) -> dict[str, np.ndarray]:
    """Checks metric series -> {name: [n, 2] float (step, value), sorted by step}.

    Empty series are dropped.
    """
    if not isinstance(history, Mapping):
        raise ValueError(
            f"`history` must map metric names to (step, value) pairs; got "
            f"{type(history).__name__}."
        )
    series = {}
    for name, pairs in history.items():
        try:
            points = np.asarray(pairs, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"`history[{name!r}]` must be a sequence of numeric (step, value) "
                f"pairs, shape [n, 2]: {error}"
            ) from error
        if points.size == 0:
            continue
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(
                f"`history[{name!r}]` must be a sequence of (step, value) pairs, "
                f"shape [n, 2]; got shape {points.shape}."
            )
        series[str(name)] = points[np.argsort(points[:, 0], kind="stable")]
    return series


# --- drawing --------------------------------------------------------------


def _new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure on an Agg canvas, size clamped to a page."""
    fig = Figure(
        figsize=(float(np.clip(width, 4.0, 16.0)), float(np.clip(height, 3.0, 11.0))),
        layout="constrained",
    )
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: PathLike) -> pathlib.Path:
    """Writes `fig` as a PNG at `path`, creating its parent directory."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI, facecolor="white")
    return path


def _panel_grid(
    num_panels: int, panel_width: float, panel_height: float
) -> tuple[Figure, list[Axes]]:
    """A figure with `num_panels` axes in a balanced grid of up to 4 columns.

    Returns the figure and the used axes in row-major order; unused grid
    cells are hidden.
    """
    num_columns = math.ceil(num_panels / math.ceil(num_panels / 4))
    num_rows = math.ceil(num_panels / num_columns)
    fig = _new_figure(
        width=panel_width * num_columns, height=0.5 + panel_height * num_rows
    )
    grid = fig.subplots(num_rows, num_columns, squeeze=False).ravel()
    for ax in grid[num_panels:]:
        ax.set_visible(False)
    return fig, list(grid[:num_panels])


def _heatmap(
    ax: Axes, matrix: np.ndarray, cmap: Colormap, norm: Normalize
) -> AxesImage:
    """Draws `matrix` [rows, columns] cell by cell; returns the image."""
    image = ax.imshow(matrix, cmap=cmap, norm=norm, aspect="auto", interpolation="none")
    num_rows, num_columns = matrix.shape
    if max(num_rows, num_columns) <= MAX_GRID_CELLS:
        ax.set_xticks(np.arange(num_columns + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(num_rows + 1) - 0.5, minor=True)
        ax.grid(which="minor", color="0.8", linewidth=0.6)
        ax.tick_params(which="minor", length=0)
    return image


def _label_axis(axis: Axis, labels: Sequence[str], *, rotate: bool = False) -> None:
    """Puts `labels` on a heatmap axis, every n-th one on long axes."""
    step = math.ceil(len(labels) / MAX_TICK_LABELS)
    positions = np.arange(0, len(labels), step)
    axis.set_ticks(positions, [labels[i] for i in positions])
    axis.set_tick_params(labelsize=8 if len(labels) <= 24 else 7)
    if rotate:
        axis.set_tick_params(labelrotation=90)


def _zero_based_norm(matrix: np.ndarray) -> Normalize:
    """Colour scale from 0 to the largest entry of `matrix` (1 if all are 0)."""
    largest = float(matrix.max())
    return Normalize(0.0, largest if largest > 0 else 1.0)


def _activation_subtitle(activation: np.ndarray) -> str:
    """Mean number of features a task uses, for the panel title."""
    if not np.any(activation):
        return "no feature used by any task"
    per_task = np.count_nonzero(activation, axis=1).mean()
    distinct = np.count_nonzero(np.any(activation > 0, axis=0))
    return f"{per_task:.1f} features per task, {distinct} used overall"


def _feature_columns(
    feature_to_factor: np.ndarray | None,
    num_features: int,
    num_factors: int,
    names: Sequence[str],
) -> tuple[np.ndarray, list[str]]:
    """Column order [k] and labels of the features in the activation heatmap.

    Without a matching, features keep their order and are labelled by index;
    with one, they are sorted by matched factor (unmatched last, ties by
    index) and labelled ``f<d>: <factor name>``.
    """
    if feature_to_factor is None:
        return np.arange(num_features), [str(d) for d in range(num_features)]
    matching = _check_matching(feature_to_factor, num_features, num_factors)
    sort_key = np.where(matching == UNMATCHED, num_factors, matching)
    order = np.argsort(sort_key, kind="stable")
    labels = [
        f"f{d}: {names[matching[d]]}" if matching[d] != UNMATCHED else f"f{d}: none"
        for d in order
    ]
    return order, labels


def _draw_activation(
    ax: Axes,
    activation: np.ndarray,
    order: np.ndarray,
    column_labels: Sequence[str],
    matched: bool,
) -> None:
    """Draws the activation heatmap [T, k], columns in `order`, zeros white.

    Args:
      ax: the axes to draw on (a colour bar is added beside it).
      activation: [T, k] non-negative activations.
      order: [k] column order of the features.
      column_labels: k labels, in column order.
      matched: whether the labels name matched factors.
    """
    masked = np.ma.masked_equal(activation[:, order], 0.0)  # [T, k]
    image = _heatmap(ax, masked, _ACTIVATION_CMAP, _zero_based_norm(activation))
    _label_axis(ax.xaxis, column_labels, rotate=matched)
    _label_axis(ax.yaxis, [str(t) for t in range(len(activation))])
    ax.set_xlabel("feature: matched factor" if matched else "feature")
    ax.set_ylabel("task")
    ax.set_title(_activation_subtitle(activation))
    colorbar = ax.figure.colorbar(image, ax=ax, shrink=0.9, pad=0.02)
    colorbar.set_label("head row norm\n(white: exactly 0, unused)")


def _draw_support(ax: Axes, true_support: np.ndarray, names: Sequence[str]) -> None:
    """Draws the true tasks x factors support [T, K] as a two-colour heatmap."""
    _heatmap(ax, true_support.astype(float), _SUPPORT_CMAP, Normalize(0.0, 1.0))
    _label_axis(ax.xaxis, names, rotate=True)
    ax.tick_params(axis="y", labelleft=False)
    ax.set_xlabel("factor")
    ax.set_title("true support")


def _annotate_cells(ax: Axes, matrix: np.ndarray, norm: Normalize) -> None:
    """Writes every value of `matrix` in its cell, white on dark cells."""
    for (row, column), value in np.ndenumerate(matrix):
        colour = "white" if norm(value) > 0.6 else "black"
        ax.text(
            column,
            row,
            f"{value:.2f}",
            ha="center",
            va="center",
            color=colour,
            fontsize=7,
        )


def _subsample(num: int, max_points: int) -> np.ndarray:
    """Sorted indices of at most `max_points` of `num` samples, fixed seed."""
    if num <= max_points:
        return np.arange(num)
    return np.sort(np.random.default_rng(0).choice(num, max_points, replace=False))


def _abs_correlation(feature: np.ndarray, values: np.ndarray) -> float:
    """|Pearson correlation| of two [num] arrays; 0 if either is constant."""
    if np.ptp(feature) == 0 or np.ptp(values) == 0:
        return 0.0
    return float(abs(np.corrcoef(feature, values)[0, 1]))


def _draw_feature_panel(
    ax: Axes, feature: np.ndarray, values: np.ndarray, shown: np.ndarray
) -> None:
    """Box plot per factor value (few values) or scatter (many) of a feature."""
    levels = np.unique(values)
    ax.grid(alpha=0.3)
    if len(levels) > MAX_BOX_VALUES:
        ax.scatter(
            values[shown],
            feature[shown],
            s=4,
            alpha=0.4,
            color=_POINT_COLOUR,
            linewidths=0,
        )
        return
    positions = np.searchsorted(levels, values)  # [num] level index per sample
    jitter = np.random.default_rng(1).uniform(-0.25, 0.25, size=len(shown))
    ax.scatter(
        positions[shown] + jitter,
        feature[shown],
        s=3,
        alpha=0.25,
        color=_POINT_COLOUR,
        linewidths=0,
    )
    ax.boxplot(
        [feature[positions == i] for i in range(len(levels))],
        positions=np.arange(len(levels)),
        widths=0.6,
        showfliers=False,
        medianprops={"color": "#d62728"},
    )
    labels = [f"{level:.3g}" for level in levels]
    ax.set_xticks(np.arange(len(levels)), labels)
    if len(levels) > 8 or sum(map(len, labels)) > 30:
        ax.tick_params(axis="x", labelrotation=90)


def _draw_unmatched(ax: Axes, name: str) -> None:
    """An empty panel for a factor that no feature is matched to."""
    ax.text(
        0.5,
        0.5,
        "no matched feature",
        ha="center",
        va="center",
        transform=ax.transAxes,
        color="0.4",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(name)


def _share_step_axis(axes: Sequence[Axes], series: Iterable[np.ndarray]) -> None:
    """Links the step axes and labels it on the lowest panel of each column.

    Args:
      axes: the panels, one per series.
      series: the plotted [n, 2] (step, value) arrays, to widen a step range
        that holds a single step to one step either side.
    """
    for ax in axes[1:]:
        ax.sharex(axes[0])
    axes[0].xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    steps = np.concatenate([points[:, 0] for points in series])
    if steps.min() == steps.max():
        axes[0].set_xlim(steps.min() - 1, steps.max() + 1)
    for ax in axes:
        lowest = not _has_panel_below(ax, axes)
        ax.tick_params(axis="x", labelbottom=lowest)
        if lowest:
            ax.set_xlabel("step")


def _has_panel_below(ax: Axes, axes: Sequence[Axes]) -> bool:
    """Whether another of `axes` sits below `ax` in its grid column."""
    spec = ax.get_subplotspec()
    return any(
        other.get_subplotspec().colspan == spec.colspan
        and other.get_subplotspec().rowspan.start > spec.rowspan.start
        for other in axes
    )
