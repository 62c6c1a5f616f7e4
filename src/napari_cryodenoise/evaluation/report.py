"""Reporting an evaluation: a markdown table, a CSV file, a plot, notes on FRC pairs."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics
from ..errors import CryoDenoiseError
from .methods import Method
from .run import FRCCurve, Row

__all__ = [
    "COLUMNS",
    "format_table",
    "present_columns",
    "frc_notes",
    "require_matplotlib",
    "summarize",
    "write_csv",
    "write_plot",
]

#: Table columns: (key, header, format). Only keys some row has are shown.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("psnr_db", "PSNR dB", "{:.2f}"),
    ("snr_gt_db", "SNR dB", "{:.2f}"),
    ("ssim", "SSIM", "{:.4f}"),
    ("frc_0143", "FRC 0.143 {u}", "{:.1f}"),
    ("frc_halfbit", "FRC 1/2-bit {u}", "{:.1f}"),
    ("xfrc_0143", "xFRC 0.143 {u}", "{:.1f}"),
    ("xfrc_05", "xFRC 0.5 {u}", "{:.1f}"),
    ("holdout_nmse", "hold-out NMSE", "{:.4f}"),
    ("region_snr_db", "region SNR dB", "{:.2f}"),
    ("n_pairs", "pairs", "{:.0f}"),
    ("seconds", "s", "{:.1f}"),
)


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (a one-line error when it is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CryoDenoiseError(
            "--plot needs matplotlib, which is not installed: pip install matplotlib "
            "(or pip install 'napari-cryodenoise[plot]'), or leave out --plot"
        ) from None
    return plt


def present_columns(
    rows: Sequence[Row], columns: Sequence[tuple[str, str, str]] = COLUMNS
) -> list[tuple[str, str, str]]:
    """The ``columns`` that some row has a value for, in order."""
    present = {k for r in rows for k in r.values}
    return [c for c in columns if c[0] in present]


def summarize(rows: Sequence[Row], methods: Sequence[Method]) -> list[Row]:
    """Mean of every score over the images, one row per method, in method order."""
    out = []
    for m in methods:
        mine = [r for r in rows if r.method == m.spec]
        keys = dict.fromkeys(k for r in mine for k in r.values)
        values = {}
        for k in keys:
            vals = [r.values[k] for r in mine if k in r.values]
            values[k] = float(np.mean(vals)) if vals else math.nan
        out.append(Row("mean", m.spec, values))
    return out


def format_table(
    rows: Sequence[Row],
    *,
    unit: str = "A",
    per_image: bool = False,
    columns: Sequence[tuple[str, str, str]] = COLUMNS,
) -> str:
    """Format rows as a markdown table with aligned columns (numbers right-aligned).

    ``columns`` lists ``(key, header, format)``; those no row has are left out.
    """
    cols = present_columns(rows, columns)
    header = (["image"] if per_image else []) + ["method"] + [h.format(u=unit) for _, h, _ in cols]
    body = []
    for r in rows:
        cells = ([r.image] if per_image else []) + [r.method]
        for key, _, fmt in cols:
            v = r.values.get(key)
            cells.append(
                "" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)
            )
        body.append(cells)
    n_text = 2 if per_image else 1
    widths = [max(len(str(row[j])) for row in [header, *body]) for j in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).ljust(w) if j < n_text else str(c).rjust(w)
            for j, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 2)) if j < n_text else ("-" * (w + 1) + ":") for j, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(header), rule, *(line(b) for b in body)])


def write_csv(
    path: Path, rows: Sequence[Row], unit: str, log: Callable[[str], None] = lambda text: None
) -> None:
    """Per-image results, one line per image and method."""
    import io

    from ..io.atomic import atomic_write_text

    cols = present_columns(rows)
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["image", "method"] + [f"{k}_{unit}" if "frc" in k else k for k, _, _ in cols])
    for r in rows:
        w.writerow(
            [r.image, r.method]
            + ["" if r.values.get(k) is None else f"{r.values[k]:.6g}" for k, _, _ in cols]
        )
    atomic_write_text(path, buf.getvalue())
    log(f"wrote {path}")


def write_plot(
    path: Path,
    rows: Sequence[Row],
    curves: Sequence[FRCCurve],
    unit: str,
    methods: Sequence[Method],
    log: Callable[[str], None] = lambda text: None,
) -> None:
    """FRC curves (if any) and a bar chart per scalar score."""
    plt = require_matplotlib()
    summary = summarize(rows, methods)
    scalar = [
        c
        for c in present_columns(summary)
        if c[0] in ("psnr_db", "snr_gt_db", "ssim", "region_snr_db", "holdout_nmse")
    ]
    n = (1 if curves else 0) + len(scalar)
    fig, axes = plt.subplots(1, max(n, 1), figsize=(5 * max(n, 1), 4), squeeze=False)
    k = 0
    if curves:
        ax = axes[0, 0]
        first = curves[0].image
        for j, c in enumerate(cv for cv in curves if cv.image == first):
            color = f"C{j}"
            ax.plot(
                c.self_frc.frequency[1:],
                c.self_frc.correlation[1:],
                color=color,
                label=f"{c.method}",
            )
            ax.plot(
                c.cross_frc.frequency[1:],
                c.cross_frc.correlation[1:],
                color=color,
                ls="--",
                lw=0.8,
            )
        ax.axhline(0.143, color="grey", lw=0.5)
        ax.axhline(0.5, color="grey", lw=0.5, ls=":")
        ax.set_xlabel(f"spatial frequency (1/{unit})")
        ax.set_ylabel("FRC (solid: even vs odd, dashed: vs raw odd)")
        ax.set_title(first)
        ax.legend(fontsize="small")
        k = 1
    for key, header, _ in scalar:
        ax = axes[0, k]
        k += 1
        vals = [r.values.get(key, math.nan) for r in summary]
        ax.bar(range(len(summary)), vals, color=[f"C{j}" for j in range(len(summary))])
        ax.set_xticks(range(len(summary)), [r.method for r in summary], rotation=30, ha="right")
        ax.set_title(header.format(u=unit))
    from ..io.atomic import atomic_path

    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120)
    finally:
        plt.close(fig)
    log(f"wrote {path}")


def frc_notes(curves: Sequence[FRCCurve]) -> list[str]:
    """Lines printed under the table: the crossing rule, and dependent even/odd pairs.

    A pair is checked on the raw halves' FRC (the ``raw`` method), else on each
    method's FRC against the raw odd half: the FRC of two smoothed halves stays
    high near Nyquist even for independent images (little power there).
    """
    if not curves:
        return []
    notes = [f"FRC resolution: {metrics.CROSSING_RULE}."]
    flagged: set[str] = set()
    for c in curves:
        raw = [d for d in curves if d.image == c.image and d.method == "raw"]
        frc = raw[0].self_frc if raw else c.cross_frc
        text = metrics.dependence_warning(frc, f"--even {c.image}", "its --odd file")
        if text is not None and c.image not in flagged:
            flagged.add(c.image)
            notes.append(f"warning: {text}.")
    return notes
