"""Figures as PNG bytes: a grid of images, a scatter (or path) of 2-D points, training curves.

Plain functions of numpy arrays, so any query or route can draw with them (heatmaps are meant
to join them here). Images are drawn pixel for pixel with Pillow: an 8x8
digit needs no axes, only enlarging. Points are drawn with matplotlib's headless Agg canvas
on a `Figure` of their own, never through pyplot, whose global state and GUI backends have no
place in a server. The same input gives the same bytes: no timestamp or software version is
written into the file, so a cached or compared answer stays stable.

Invalid input (a wrong shape, a grid too large to draw) raises `ValueError` with a message
meant for the caller; queries turn it into their own error.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

MIN_SIDE = 32  # pixels: smaller images are enlarged (nearest neighbour) to reach this
PADDING = 2  # pixels between and around the images of a grid
PAD_VALUE = 128  # mid grey: apart from both a black (-1) and a white (+1) background
# A grid of more pixels is refused rather than drawn: 10,000 colour 64x64 samples would be
# an image of 6,600 x 6,600 pixels, over 130 MB before compression.
MAX_GRID_PIXELS = 25_000_000
FIGURE_INCHES = 4.8
DPI = 100

# matplotlib does not promise thread safety (its font cache, its text layout), and the API
# answers queries from a thread pool: one figure is drawn at a time.
drawing_lock = threading.Lock()


def to_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 pixels of values in [-1, 1] (the generators' tanh range): -1 is 0 (black), +1 is
    255 (white); values outside are clipped, NaN counts as 0 (mid grey)."""
    scaled = (np.nan_to_num(np.asarray(images, dtype=np.float64)) + 1.0) * 127.5
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def image_grid_png(images: np.ndarray, columns: int | None = None) -> bytes:
    """A PNG of images x[n, C, H, W] in [-1, 1] laid out row by row, `columns` to a row
    (None: a square-ish grid), grey for C = 1 and RGB for C = 3. Each image is enlarged by a
    whole factor until its longer side has at least `MIN_SIDE` pixels (nearest neighbour:
    pixels stay sharp squares), with `PADDING` grey pixels between and around them."""
    x = np.asarray(images)
    if x.ndim != 4 or len(x) == 0 or 0 in x.shape:
        raise ValueError(f"a grid needs images of shape [n, C, H, W], n >= 1; got {x.shape}")
    n, channels, height, width = x.shape
    if channels not in (1, 3):
        raise ValueError(
            f"PNG draws grey (1 channel) or colour (3 channel) images, not {channels} channels"
        )
    columns = min(max(columns or math.ceil(math.sqrt(n)), 1), n)
    rows = math.ceil(n / columns)
    scale = max(1, math.ceil(MIN_SIDE / max(height, width)))
    tile_h, tile_w = height * scale, width * scale
    canvas_h, canvas_w = rows * (tile_h + PADDING) + PADDING, columns * (tile_w + PADDING) + PADDING
    if canvas_h * canvas_w > MAX_GRID_PIXELS:
        raise ValueError(
            f"a grid of {n} images would be {canvas_w}x{canvas_h} pixels, more than "
            f"{MAX_GRID_PIXELS:,}; ask for fewer"
        )
    # pixels[n, H*scale, W*scale, C]: channels last, as images are stored
    pixels = to_pixels(x).transpose(0, 2, 3, 1).repeat(scale, axis=1).repeat(scale, axis=2)
    canvas = np.full((canvas_h, canvas_w, channels), PAD_VALUE, dtype=np.uint8)
    for i, tile in enumerate(pixels):
        top = PADDING + (i // columns) * (tile_h + PADDING)
        left = PADDING + (i % columns) * (tile_w + PADDING)
        canvas[top : top + tile_h, left : left + tile_w] = tile
    image = Image.fromarray(canvas[:, :, 0] if channels == 1 else canvas)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # Pillow writes no time or software chunk
    return buffer.getvalue()


def scatter_png(points: np.ndarray, title: str = "", *, path: bool = False) -> bytes:
    """A PNG of points p[n, 2]: small translucent markers so dense regions show, equal axes so
    a circle stays round; with `path`, the points in order joined by a line (a walk through
    the latent space), its start and end marked."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) == 0:
        raise ValueError(f"a scatter needs points of shape [n, 2], n >= 1; got {p.shape}")
    # Imported here: matplotlib takes a while to import, and only figures of points need it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with drawing_lock:
        figure = Figure(figsize=(FIGURE_INCHES, FIGURE_INCHES), dpi=DPI)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        if path:
            axes.plot(p[:, 0], p[:, 1], "-o", markersize=3, linewidth=1, alpha=0.8)
            axes.plot(*p[0], "s", markersize=6, color="tab:green", label="start")
            axes.plot(*p[-1], "D", markersize=6, color="tab:red", label="end")
            axes.legend(loc="best", fontsize="small")
        else:
            axes.scatter(p[:, 0], p[:, 1], s=6, alpha=0.5, linewidths=0)
        axes.set_aspect("equal", adjustable="datalim")
        axes.grid(True, linewidth=0.5, alpha=0.3)
        axes.set_xlabel("x[0]")
        axes.set_ylabel("x[1]")
        if title:
            axes.set_title(title, fontsize="medium")
        figure.tight_layout()
        buffer = io.BytesIO()
        # No "Software" chunk (it names matplotlib's version): the same points, the same bytes.
        figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


# -- training curves ---------------------------------------------------------------------------
Series = tuple[Sequence[int], Sequence[float]]  # (steps, values) of one metric
MAX_PANELS = 24  # metrics drawn at once: a wall of tiny panels helps no one
PANEL_INCHES = (4.6, 3.0)


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average, debiased so that the first
    points are not pulled towards 0 (Kingma & Ba 2015's bias correction); non-finite points
    are skipped, and stay gaps."""
    out = np.full(len(values), np.nan)
    average, seen = 0.0, 0
    for i, value in enumerate(values):
        if not np.isfinite(value):
            continue
        seen += 1
        average = weight * average + (1.0 - weight) * value
        out[i] = average / (1.0 - weight**seen) if weight > 0 else value
    return out


def curves_png(
    runs: Mapping[str, Mapping[str, Series]], *, smoothing: float = 0.6, title: str = ""
) -> bytes:
    """A PNG of training curves: one panel per metric name, one line per run (`runs`:
    label -> {metric name -> (steps, values)}), the smoothed curve drawn over the raw one
    faintly, steps on a shared scale per panel. With no points yet, a figure that says so
    (a running job is drawn from its first report on)."""
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing is in [0, 1); got {smoothing}")
    names = sorted({name for series in runs.values() for name in series})
    if len(names) > MAX_PANELS:
        raise ValueError(
            f"{len(names)} metrics are too many for one figure (at most {MAX_PANELS}); "
            "choose some with `name`"
        )
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = min(3, max(len(names), 1))
    rows = max(1, math.ceil(len(names) / columns))
    with drawing_lock:
        figure = Figure(
            figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows + (0.4 if title else 0)),
            dpi=DPI,
        )
        FigureCanvasAgg(figure)
        if not names:
            figure.text(0.5, 0.5, "no metrics reported yet", ha="center", va="center")
        for i, name in enumerate(names):
            axes = figure.add_subplot(rows, columns, i + 1)
            for j, (label, series) in enumerate(runs.items()):
                if name not in series:
                    continue
                steps = np.asarray(series[name][0], dtype=np.float64)
                values = np.asarray(series[name][1], dtype=np.float64)
                values = np.where(np.isfinite(values), values, np.nan)
                colour = f"C{j % 10}"
                if smoothing > 0 and len(values) > 2:
                    axes.plot(steps, values, color=colour, alpha=0.25, linewidth=1)
                    axes.plot(steps, smooth(values, smoothing), color=colour, linewidth=1.6,
                              label=label)  # fmt: skip
                else:
                    axes.plot(steps, values, color=colour, linewidth=1.6, marker=".",
                              markersize=4, label=label)  # fmt: skip
            axes.set_title(name, fontsize="medium")
            axes.set_xlabel("step")
            axes.grid(True, linewidth=0.5, alpha=0.3)
            axes.ticklabel_format(axis="both", style="sci", scilimits=(-3, 4))
            if len(runs) > 1:
                axes.legend(loc="best", fontsize="small")
        if title:
            figure.suptitle(title)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


# -- grid heatmaps -----------------------------------------------------------------------------
# Arrows per action name, as (d_col, d_row): a grid's own moves; other actions get none.
ARROWS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
MAX_ARROW_SIDE = 40  # arrows on grids up to this many cells a side (beyond: a blur of ink)
MAX_LABEL_SIDE = 10  # each cell's number written on grids up to this side


def heatmap_png(
    values: np.ndarray,
    *,
    title: str,
    wall: np.ndarray | None = None,
    terminal: np.ndarray | None = None,
    policy: np.ndarray | None = None,
    action_names: Sequence[str] = (),
    beside: tuple[np.ndarray, str] | None = None,
) -> bytes:
    """A PNG of per-cell values v[rows, cols] (a state value, a learned reward) with a colour
    bar; walls dark grey, terminal cells outlined, and the policy's action in each other cell
    as an arrow (for the actions that are moves). Small grids get each cell's number. With
    `beside` (values and title), a second grid drawn the same way to its right, on its own
    colour scale (a learned reward beside the true one: equal only up to shaping and scale)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or 0 in v.shape:
        raise ValueError(f"a heatmap needs values on a 2-D grid; got shape {list(v.shape)}")
    rows, cols = v.shape
    panels = [(v, title)]
    if beside is not None:
        panels.append((np.asarray(beside[0], dtype=np.float64).reshape(rows, cols), beside[1]))
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    side = min(9.0, max(3.5, 0.55 * max(rows, cols)))
    with drawing_lock:
        width, height = side * cols / max(rows, cols), side * rows / max(rows, cols)
        figure = Figure(figsize=((width + 1.6) * len(panels), height + 0.8), dpi=DPI)
        FigureCanvasAgg(figure)
        for i, (shown_values, shown_title) in enumerate(panels):
            axes = figure.add_subplot(1, len(panels), i + 1)
            _heatmap(figure, axes, shown_values, wall, terminal, policy, action_names)
            axes.set_title(shown_title, fontsize="medium")
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _heatmap(
    figure: Figure,
    axes: Axes,
    v: np.ndarray,
    wall: np.ndarray | None,
    terminal: np.ndarray | None,
    policy: np.ndarray | None,
    action_names: Sequence[str],
) -> None:
    from matplotlib.colors import ListedColormap

    rows, cols = v.shape
    hidden = np.zeros_like(v, dtype=bool) if wall is None else np.asarray(wall, bool)
    shown = np.ma.masked_array(np.nan_to_num(v), mask=hidden | ~np.isfinite(v))
    image = axes.imshow(shown, cmap="viridis", interpolation="nearest")
    if hidden.any():
        walls = np.ma.masked_array(np.ones_like(v), mask=~hidden)
        axes.imshow(walls, cmap=ListedColormap(["#3a3a3a"]), interpolation="nearest")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    ends = np.zeros_like(hidden) if terminal is None else np.asarray(terminal, bool)
    for r, c in zip(*np.nonzero(ends & ~hidden), strict=True):
        axes.add_patch(_cell_outline(r, c))
    arrows = policy is not None and max(rows, cols) <= MAX_ARROW_SIDE
    if arrows:
        moves = [ARROWS.get(name, (0, 0)) for name in action_names]
        chosen = np.asarray(policy).reshape(rows, cols)
        d = np.array([moves[a] if 0 <= a < len(moves) else (0, 0) for a in chosen.ravel()])
        keep = (~hidden & ~ends).ravel() & (np.abs(d).sum(axis=1) > 0)
        r, c = np.divmod(np.flatnonzero(keep), cols)
        axes.quiver(c, r, d[keep, 0], d[keep, 1], angles="xy", scale_units="xy", scale=2.2,
                    pivot="middle", color="white", width=0.004, headwidth=4,
                    headlength=4)  # fmt: skip
    if max(rows, cols) <= MAX_LABEL_SIDE:
        low, high = float(np.nanmin(shown)), float(np.nanmax(shown))
        for (r, c), value in np.ndenumerate(v):
            if not hidden[r, c] and np.isfinite(value):
                below = 0.3 if arrows else 0.0  # under the arrow
                share = (value - low) / (high - low) if high > low else 0.0
                bright = share > 0.65  # viridis turns yellow: dark ink there
                axes.text(c, r + below, f"{value:.3g}", ha="center", va="center",
                          fontsize="x-small", color="black" if bright else "white")  # fmt: skip
    axes.set_xticks(range(cols) if cols <= 20 else [])
    axes.set_yticks(range(rows) if rows <= 20 else [])
    axes.set_xlabel("column")
    axes.set_ylabel("row")


def _cell_outline(row: int, col: int) -> Rectangle:

    from matplotlib.patches import Rectangle

    return Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="#ff5050", linewidth=2)
