"""Figures of explanations as PNG bytes: attribution maps, Grad-CAM overlays, activations,
embeddings and gradient flow.

The conventions of `ml.queries.figures`: matplotlib's Agg canvas on a `Figure` of its own
(never pyplot), one figure drawn at a time, no software version in the file (the same answer
gives the same bytes). Maps of images are shown beside the image they explain, with the
colour scale the data calls for: a diverging one centred on zero for signed attributions, a
sequential one for magnitudes (Grad-CAM, activations).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_SHOWN = 8  # inputs drawn in one figure; the JSON answer has them all
MAX_BARS = 12  # numbers drawn as bars; wider inputs are drawn as a matrix
MAX_MAPS = 32  # feature maps of one convolution layer drawn
LAYER_ROW_INCHES = 0.9


@contextmanager
def new_figure(width: float, height: float) -> Iterator[Figure]:
    """A figure of `width` x `height` inches on its own Agg canvas, drawn under the lock."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Imported here: `ml.queries` imports the explanation queries, which import this module.
    from ml.queries.figures import DPI, drawing_lock

    with drawing_lock:
        figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        yield figure


def png_of(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def display_image(x: np.ndarray) -> np.ndarray:
    """An input image [C, H, W] as something imshow draws: grey for one channel, RGB for
    three, and for two (the pixel grid world's agent and goal planes) red and green; scaled
    to [0, 1] by its own range."""
    image = np.asarray(x, dtype=np.float64)
    low, high = float(image.min()), float(image.max())
    image = (image - low) / (high - low) if high > low else np.zeros_like(image)
    channels = image.shape[0]
    if channels == 1:
        return image[0]
    if channels == 3:
        return image.transpose(1, 2, 0)
    rgb = np.zeros((*image.shape[1:], 3))
    for c in range(min(channels, 3)):
        rgb[..., c] = image[c]
    return rgb


def input_title(x: np.ndarray, index: int | None = None) -> str:
    """ "input i", saying which colour is which channel where `display_image` colours them."""
    name = "input" if index is None else f"input {index}"
    return f"{name} (red: channel 0, green: channel 1)" if x.shape[0] == 2 else name


def _hide_ticks(axes: Axes) -> None:
    axes.set_xticks([])
    axes.set_yticks([])


def attribution_png(
    inputs: np.ndarray,
    maps: np.ndarray,
    *,
    titles: Sequence[str],
    heading: str,
    input_names: Sequence[str] | None = None,
    randomisation: Sequence[tuple[str, float]] | None = None,
) -> bytes:
    """Attributions a[B, *shape] of inputs x[B, *shape] (the first `MAX_SHOWN`). Images:
    each input beside its map summed over channels, on a diverging scale centred on zero
    (red pushes the output up, blue down). Vectors of a few numbers: a bar per number,
    named when `input_names` are given; wider ones: one row per input of a coloured
    matrix. With `randomisation`, a last panel of the rank correlation with the trained
    map as layers are re-drawn."""
    x, a = np.asarray(inputs)[:MAX_SHOWN], np.asarray(maps)[:MAX_SHOWN]
    n = len(x)
    extra = 1 if randomisation else 0
    if x.ndim == 4:
        rows, columns, size = n + extra, 2, (6.4, 2.6 * (n + extra) + 0.4)
    elif x.shape[1] <= MAX_BARS:
        columns = min(2, n)
        rows = -(-n // columns) + extra
        size = (5.0 * columns, (0.3 * x.shape[1] + 1.2) * (rows - extra) + 2.6 * extra + 0.4)
    else:
        rows, columns, size = 1 + extra, 1, (9.0, 0.35 * n + 1.6 + 2.6 * extra)
    with new_figure(*size) as figure:
        grid = figure.add_gridspec(rows, columns)
        if x.ndim == 4:
            for i in range(n):
                _image_and_map(figure, grid[i, 0], grid[i, 1], x[i], a[i], titles[i])
        elif x.shape[1] <= MAX_BARS:
            for i in range(n):
                axes = figure.add_subplot(grid[i // columns, i % columns])
                _bars(axes, a[i].reshape(-1), input_names)
                axes.set_title(titles[i], fontsize="small")
        else:
            _matrix(figure, figure.add_subplot(grid[0, :]), a.reshape(n, -1), titles)
        if randomisation:
            _randomisation(figure.add_subplot(grid[rows - 1, :]), randomisation)
        figure.suptitle(heading, fontsize="medium")
        return png_of(figure)


def _image_and_map(
    figure: Figure, left_cell: Any, right_cell: Any, x: np.ndarray, a: np.ndarray, title: str
) -> None:
    left = figure.add_subplot(left_cell)
    left.imshow(display_image(x), cmap="gray", interpolation="nearest")
    left.set_title(input_title(x), fontsize="small")
    _hide_ticks(left)
    right = figure.add_subplot(right_cell)
    summed = a.sum(axis=0)
    bound = float(np.abs(summed).max()) or 1.0
    shown = right.imshow(summed, cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
    figure.colorbar(shown, ax=right, fraction=0.046, pad=0.04)
    right.set_title(title, fontsize="small")
    _hide_ticks(right)


def _matrix(figure: Figure, axes: Axes, a: np.ndarray, titles: Sequence[str]) -> None:
    """Attributions of wide inputs, a row per input, on a diverging scale."""
    bound = float(np.abs(a).max()) or 1.0
    shown = axes.imshow(a, aspect="auto", cmap="RdBu_r", vmin=-bound, vmax=bound,
                        interpolation="nearest")  # fmt: skip
    figure.colorbar(shown, ax=axes, label="attribution")
    axes.set_yticks(range(len(a)), list(titles), fontsize="x-small")
    axes.set_xlabel(f"input number (0..{a.shape[1] - 1})")


def _bars(axes: Axes, values: np.ndarray, names: Sequence[str] | None) -> None:
    """Signed values as horizontal bars, the first number on top."""
    d = len(values)
    labels = list(names) if names is not None and len(names) == d else [f"x[{k}]" for k in range(d)]
    colours = ["#c0392b" if v > 0 else "#2c7bb6" for v in values]
    axes.barh(range(d), values, color=colours)
    axes.set_yticks(range(d), labels, fontsize="x-small")
    axes.invert_yaxis()
    axes.axvline(0, color="black", linewidth=0.6)
    axes.grid(True, axis="x", linewidth=0.5, alpha=0.3)
    axes.locator_params(axis="x", nbins=5)
    axes.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
    axes.set_xlabel("attribution")


def _randomisation(axes: Axes, found: Sequence[tuple[str, float]]) -> None:
    names = [name for name, _ in found]
    axes.plot(range(len(found)), [c for _, c in found], "o-", color="tab:purple")
    axes.axhline(0, color="black", linewidth=0.6)
    axes.set_ylim(-1.05, 1.05)
    axes.set_xticks(range(len(found)), names, rotation=30, ha="right", fontsize="x-small")
    axes.set_ylabel("rank correlation")
    axes.set_title(
        "sanity check (Adebayo et al. 2018): layers re-drawn from the top down;\n"
        "a correlation near 0 means the map depends on what the model learned",
        fontsize="small",
    )
    axes.grid(True, linewidth=0.5, alpha=0.3)


def grad_cam_png(
    inputs: np.ndarray, maps: np.ndarray, *, titles: Sequence[str], heading: str
) -> bytes:
    """Grad-CAM maps m[B, H, W] in [0, 1] over their images x[B, C, H, W]: the image, and
    the image with the map laid over it."""
    x, m = np.asarray(inputs)[:MAX_SHOWN], np.asarray(maps)[:MAX_SHOWN]
    n = len(x)
    with new_figure(6.4, 2.6 * n + 0.5) as figure:
        for i in range(n):
            left = figure.add_subplot(n, 2, 2 * i + 1)
            left.imshow(display_image(x[i]), cmap="gray", interpolation="nearest")
            left.set_title(input_title(x[i], i), fontsize="small")
            _hide_ticks(left)
            right = figure.add_subplot(n, 2, 2 * i + 2)
            right.imshow(display_image(x[i]), cmap="gray", interpolation="nearest")
            shown = right.imshow(m[i], cmap="inferno", alpha=0.6, vmin=0.0, vmax=1.0,
                                 interpolation="bilinear")  # fmt: skip
            figure.colorbar(shown, ax=right, fraction=0.046, pad=0.04)
            right.set_title(titles[i], fontsize="small")
            _hide_ticks(right)
        figure.suptitle(heading, fontsize="medium")
        return png_of(figure)


def activations_png(layers: Sequence[tuple[str, np.ndarray]], *, heading: str) -> bytes:
    """Each layer's activations of one input, a row per layer: a convolution's maps
    [C, H, W] as a strip of small images, a dense layer's units [U] as a coloured strip."""
    rows = len(layers)
    with new_figure(9.0, LAYER_ROW_INCHES * rows + 0.7) as figure:
        grid = figure.add_gridspec(rows, 1)
        for r, (name, values) in enumerate(layers):
            v = np.asarray(values, dtype=np.float64)
            if v.ndim == 3:
                maps = v[:MAX_MAPS]
                inner = grid[r].subgridspec(1, len(maps) + 1, width_ratios=[3] + [1] * len(maps))
                label = figure.add_subplot(inner[0])
                label.axis("off")
                label.text(0, 0.5, f"{name}\n{list(v.shape)}", va="center", fontsize="x-small")
                low, high = float(v.min()), float(v.max())
                for c, plane in enumerate(maps):
                    axes = figure.add_subplot(inner[c + 1])
                    axes.imshow(plane, cmap="viridis", vmin=low, vmax=high,
                                interpolation="nearest")  # fmt: skip
                    axes.axis("off")
            else:
                axes = figure.add_subplot(grid[r])
                flat = v.reshape(-1)
                shown = axes.imshow(flat[None, :], aspect="auto", cmap="viridis",
                                    interpolation="nearest")  # fmt: skip
                figure.colorbar(shown, ax=axes, fraction=0.02, pad=0.01)
                axes.set_yticks([0], [name], fontsize="x-small")
                axes.set_xticks([])
                axes.set_xlabel(f"{len(flat)} units", fontsize="x-small", labelpad=1)
        figure.suptitle(heading, fontsize="medium")
        return png_of(figure)


def embedding_png(
    points: np.ndarray,
    colours: np.ndarray,
    *,
    categories: Sequence[str] | None,
    colour_label: str,
    axis_labels: tuple[str, str],
    heading: str,
) -> bytes:
    """Points p[n, 2] coloured by category (`categories` names the integer colours, with
    a legend) or by a number (a colour bar labelled `colour_label`)."""
    p = np.asarray(points, dtype=np.float64)
    with new_figure(6.4, 5.2) as figure:
        axes = figure.add_subplot()
        if categories is not None:
            for k, name in enumerate(categories):
                chosen = np.asarray(colours) == k
                if chosen.any():
                    axes.scatter(p[chosen, 0], p[chosen, 1], s=10, alpha=0.7, linewidths=0,
                                 color=f"C{k % 10}", label=name)  # fmt: skip
            axes.legend(loc="best", fontsize="small", title=colour_label, markerscale=1.5)
        else:
            shown = axes.scatter(p[:, 0], p[:, 1], c=np.asarray(colours, dtype=np.float64),
                                 s=10, alpha=0.8, linewidths=0, cmap="viridis")  # fmt: skip
            figure.colorbar(shown, ax=axes, label=colour_label)
        axes.set_xlabel(axis_labels[0])
        axes.set_ylabel(axis_labels[1])
        axes.grid(True, linewidth=0.5, alpha=0.3)
        axes.set_title(heading, fontsize="medium")
        return png_of(figure)


def gradient_flow_png(
    names: Sequence[str],
    gradient_norms: Sequence[float],
    saturation: Sequence[tuple[str, float, float]],
    *,
    heading: str,
) -> bytes:
    """Per layer, the norm of the gradient reaching its weights (log scale: vanishing
    gradients fall by orders of magnitude towards the input), and per activation (name,
    fraction of units saturated, mean |f'(x)|) the fraction as a bar with both numbers
    written beside it."""
    panels = 2 if saturation else 1
    with new_figure(7.5, 2.2 + 0.25 * max(len(names), len(saturation)) * panels) as figure:
        axes = figure.add_subplot(panels, 1, 1)
        norms = np.maximum(np.asarray(gradient_norms, dtype=np.float64), 1e-30)
        axes.barh(range(len(names)), norms, color="tab:blue")
        axes.set_xscale("log")
        axes.set_yticks(range(len(names)), list(names), fontsize="x-small")
        axes.invert_yaxis()
        axes.set_xlabel("gradient norm of the layer's weights (log)")
        axes.grid(True, axis="x", linewidth=0.5, alpha=0.3)
        if saturation:
            lower = figure.add_subplot(panels, 1, 2)
            fractions = [f for _, f, _ in saturation]
            lower.barh(range(len(saturation)), fractions, color="tab:red")
            for row, (_, fraction, derivative) in enumerate(saturation):
                lower.text(min(fraction, 0.75) + 0.01, row, f"{fraction:.0%} (mean |f'| "
                           f"{derivative:.2g})", va="center", fontsize="x-small")  # fmt: skip
            lower.set_xlim(0, 1)
            lower.set_yticks(range(len(saturation)), [n for n, _, _ in saturation],
                             fontsize="x-small")  # fmt: skip
            lower.invert_yaxis()
            lower.set_xlabel("fraction of units saturated (|f'(x)| small)")
            lower.grid(True, axis="x", linewidth=0.5, alpha=0.3)
        figure.suptitle(heading, fontsize="medium")
        return png_of(figure)
