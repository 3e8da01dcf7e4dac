"""The data card's two figures: rows per source, and the distribution of prompt and response lengths."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# PNG text chunks matplotlib would add: its version (and, for some backends, a date). Dropping them makes the
# bytes depend only on the data, the matplotlib version and the bundled font, so rebuilds give identical files.
PNG_METADATA = {"Software": None}
DPI = 100


def _figure(width: float, height: float):
    # A bare Figure on the Agg canvas: no pyplot, so no global backend switch and no GUI toolkit import.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _colours(count: int) -> list:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return [palette(i % 10) for i in range(count)]


def composition_chart(names: list[str], requested: list[int | None], written: list[int], path: Path) -> Path:
    """Horizontal bars of rows written per source, with the requested count drawn as an outline behind them."""
    figure = _figure(7.0, 0.45 * len(names) + 1.4)
    axes = figure.add_subplot()
    positions = np.arange(len(names))[::-1]  # first source on top
    asked = [r if r is not None else w for r, w in zip(requested, written)]
    axes.barh(positions, asked, color="none", edgecolor="0.45", linestyle="--", label="requested")
    axes.barh(positions, written, color=_colours(len(names)), label="written")
    total = max(sum(written), 1)
    for y, count in zip(positions, written):
        axes.text(count, y, f" {count:,} ({100 * count / total:.1f}%)", va="center", fontsize=8)
    axes.set_yticks(positions, labels=names, fontsize=9)
    axes.set_xlabel("rows")
    axes.set_xlim(0, max(max(asked, default=1), 1) * 1.3)
    axes.set_title("Rows per source (dashed: requested)", fontsize=10)
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    figure.savefig(path, format="png", metadata=PNG_METADATA)
    return path


def length_histogram(names: list[str], lengths: dict[tuple[str, str], np.ndarray], path: Path,
                     role_names: tuple[str, str] = ("human", "gpt"), unit: str = "characters") -> Path:
    """Histograms of the length of each prompt (human turn) and response (gpt turn), titled with the roles of the
    format written (``role_names``, e.g. user/assistant): one row of panels per
    source, so each source can be read on its own instead of ten lines overlaid in one plot.

    Bins are logarithmic and shared by all panels (lengths span four orders of magnitude, from a label word to a
    ShareGPT essay), and each panel shows shares of its own source's turns, so a 20K source is as readable as a
    388K one; the median is marked.
    """
    figure = _figure(10.0, 0.9 + 1.15 * max(len(names), 1))
    colours = _colours(len(names))
    present = [v for v in lengths.values() if len(v)]
    shortest = max(min((int(v.min()) for v in present), default=1), 1)
    longest = max(max((int(v.max()) for v in present), default=2), shortest + 1)
    bins = np.unique(np.geomspace(shortest, longest + 1, num=40).round().astype(np.int64))
    grid = figure.subplots(max(len(names), 1), 2, sharex=True, squeeze=False)
    for row, (name, colour) in enumerate(zip(names, colours)):
        for column, (role, shown, title) in enumerate(zip(("human", "gpt"), role_names, ("prompt", "response"))):
            axes = grid[row][column]
            values = lengths.get((name, role))
            if values is not None and len(values):
                # One filled step artist per panel (hist would draw a patch per bin: 40 x 20 panels).
                counts, _ = np.histogram(np.maximum(values, 1), bins=bins)
                axes.stairs(counts / len(values), bins, fill=True, color=colour, alpha=0.85)
                axes.axvline(max(float(np.median(values)), 1.0), color="0.2", linewidth=0.8, linestyle="--")
            axes.set_xscale("log")
            axes.minorticks_off()  # decades are enough to read; minor ticks were most of the figure's drawing time
            axes.tick_params(labelsize=7)
            axes.spines[["top", "right"]].set_visible(False)
            if column == 0:
                axes.set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
            if row == 0:
                axes.set_title(f"{unit} per {title} ({shown} turn); dashed: median", fontsize=9)
            if row == len(names) - 1:
                axes.set_xlabel(f"{unit} per {title}", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, format="png", metadata=PNG_METADATA)
    return path
