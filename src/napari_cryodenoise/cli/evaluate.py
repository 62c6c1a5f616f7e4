"""``cryodenoise evaluate``: compare denoising methods with quality metrics.

Three kinds of evidence, usable together:

* ground truth (``IMAGES --clean CLEAN``): PSNR, SNR and SSIM after the best
  affine fit of each method's output to the clean image;
* even/odd half sums (``--even E --odd O``): FRC of method(even) against
  method(odd), FRC of method(even) against the raw odd half, and the
  noise2noise hold-out error;
* particle picks (``IMAGES --picks STAR --radius PX``): the Topaz-Denoise
  region SNR from disc regions at the picks and automatic background regions.

Methods: ``raw``, ``gaussian:SIGMA`` (pixels), ``lowpass:FACTOR`` (Topaz's
``--lowpass``: keep ``|f| <= 0.5/FACTOR`` cycles/px), a pretrained model alias
or a model file, or several models joined by ``+`` (their outputs averaged).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import metrics
from . import CLIError
from ._common import add_allow_pickle
from ._types import check_gaussian, check_lowpass, nonnegative_float, positive_float

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

DEFAULT_METHODS = "raw,gaussian:2,unet"


@dataclass
class Method:
    """A way to turn a noisy image into a cleaner one.

    Attributes
    ----------
    spec : str
        What the user typed (``raw``, ``gaussian:2``, ``lowpass:4``, ``unet``,
        ``path/to/model.pt``, ``unet+fcnn``).
    kind : str
        ``"raw"``, ``"gaussian"``, ``"lowpass"`` or ``"model"``.
    value : float
        Sigma (gaussian) or factor (lowpass).
    models : list of str
        Model aliases or paths (kind ``"model"``).

    """

    spec: str
    kind: str
    value: float = 0.0
    models: list[str] = field(default_factory=list)
    _loaded: list[Any] | None = field(default=None, repr=False)

    def apply(
        self,
        image: np.ndarray,
        *,
        device: str = "auto",
        precision: str = "fp32",
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Return the method's output for ``image`` (float32, same shape)."""
        if self.kind == "raw":
            return np.asarray(image, dtype=np.float32)
        if self.kind == "gaussian":
            from ..engine.filters import gaussian_filter

            # the engine's filter pads with zeros: filter about the mean so the
            # borders do not darken, as Topaz does on its normalised images
            data = np.asarray(image, dtype=np.float32)
            mean = float(data.mean(dtype=np.float64))
            return gaussian_filter(data - mean, self.value) + np.float32(mean)
        if self.kind == "lowpass":
            from ..engine.filters import fourier_lowpass

            return fourier_lowpass(np.asarray(image, dtype=np.float32), self.value)
        try:
            from ..engine import denoise
            from ..models import load_model
        except ImportError as err:  # pragma: no cover - partial builds
            raise CLIError(f"model inference is not available in this build ({err})") from err
        if self._loaded is None:
            self._loaded = [load_model(name) for name in self.models]
        return denoise(image, self._loaded, device=device, precision=precision, progress=progress)


def parse_method(spec: str) -> Method:
    """Parse one method specification (see the module docstring)."""
    text = spec.strip()
    if not text:
        raise CLIError("empty method name")
    low = text.lower()
    if low == "raw":
        return Method(text, "raw")
    for kind in ("gaussian", "lowpass"):
        if low.startswith(kind + ":") or low == kind:
            _, _, number = text.partition(":")
            try:
                value = float(number)
            except ValueError:
                raise CLIError(f"method {text!r}: expected {kind}:NUMBER, e.g. {kind}:2") from None
            problem = check_gaussian(value) if kind == "gaussian" else check_lowpass(value)
            if problem or value <= 0:
                problem = problem or "the number must be > 0"
                raise CLIError(f"method {text!r}: {problem}")
            return Method(text, kind, value)
    models = [part.strip() for part in text.split("+")]
    if any(not part for part in models):
        raise CLIError(f"method {text!r}: empty model name in an ensemble")
    return Method(text, "model", models=models)


def parse_methods(text: str | Sequence[str]) -> list[Method]:
    """Parse a comma-separated list (or several lists) of methods, keeping order, no repeats."""
    parts = [text] if isinstance(text, str) else list(text)
    specs = [s for part in parts for s in part.split(",") if s.strip()]
    if not specs:
        raise CLIError("no methods given")
    seen: dict[str, Method] = {}
    for s in specs:
        seen.setdefault(s.strip(), parse_method(s))
    return list(seen.values())


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``evaluate`` subcommand."""
    p = subparsers.add_parser(
        "evaluate",
        help="compare denoising methods (ground truth, even/odd FRC, or particle-pick SNR)",
        description=(
            "Compare denoising methods on a set of images. Give noisy IMAGES with --clean "
            "(ground truth) and/or --picks (region SNR), and/or --even/--odd half sums (FRC). "
            "Prints one row per method, averaged over the images."
        ),
        epilog=(
            "methods: raw, gaussian:SIGMA, lowpass:FACTOR, a model alias (unet, unet-v0.2.1, "
            "unet-small, fcnn, affine, unet-3d, ...), a model file, or models joined by '+'. "
            "example: cryodenoise evaluate mic.mrc --picks mic_autopick.star --radius 12 "
            "-m raw,gaussian:2,unet,fcnn"
        ),
    )
    p.add_argument(
        "images",
        nargs="*",
        type=Path,
        metavar="IMAGE",
        help="noisy images (for --clean and --picks)",
    )
    p.add_argument(
        "-m",
        "--methods",
        action="append",
        default=None,
        metavar="LIST",
        help=f"comma-separated methods (repeatable; default {DEFAULT_METHODS})",
    )
    gt = p.add_argument_group("ground truth")
    gt.add_argument(
        "--clean",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="noise-free images, one per IMAGE, in the same order",
    )
    eo = p.add_argument_group("even/odd halves")
    eo.add_argument(
        "--even", nargs="+", type=Path, default=[], metavar="FILE", help="sums of the even frames"
    )
    eo.add_argument(
        "--odd",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="sums of the odd frames, one per --even file",
    )
    eo.add_argument(
        "--taper",
        type=nonnegative_float,
        default=0.05,
        help="FRC edge taper as a fraction of the size (default 0.05; 0 = none)",
    )
    pk = p.add_argument_group("particle picks")
    pk.add_argument(
        "--picks",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="pick files (RELION .star, Topaz .txt, .box): one per IMAGE, or one "
        "STAR file with rlnMicrographName for all",
    )
    pk.add_argument("--radius", type=positive_float, default=None, help="region radius in pixels")
    pk.add_argument(
        "--region", choices=("disc", "box"), default="disc", help="region shape (default disc)"
    )
    pk.add_argument(
        "--min-separation",
        type=nonnegative_float,
        default=3.0,
        help="background centres at least this many radii from every pick (default 3)",
    )
    pk.add_argument("--seed", type=int, default=0, help="seed of the background placement")
    p.add_argument(
        "--pixel-size",
        type=positive_float,
        default=None,
        help="Angstrom/pixel for FRC (default: from the header; px if unknown)",
    )
    p.add_argument("-d", "--device", default="auto", help="model device: auto, cpu, cuda, mps")
    p.add_argument("--precision", default="fp32", help="model precision (default fp32)")
    p.add_argument("--per-image", action="store_true", help="one table row per image and method")
    p.add_argument(
        "--csv", type=Path, default=None, metavar="PATH", help="write per-image results as CSV"
    )
    p.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="PATH.png",
        help="plot FRC curves and scores (needs matplotlib; format from the suffix: .png, "
        ".pdf, .svg, ...)",
    )
    add_allow_pickle(p)
    p.set_defaults(func=run)


# ----------------------------------------------------------------------------- reading


def _read(path: Path) -> tuple[np.ndarray, Any]:
    from ..errors import InputError
    from ..io import read_image

    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    try:
        data, info = read_image(path)
    except InputError as err:
        raise CLIError(str(err)) from err
    if info.kind in ("stack", "movie"):
        raise CLIError(
            f"{path}: is a {info.kind} of {data.shape[0]} images; evaluate takes single images "
            "or volumes (sum the frames, or split the stack, first)"
        )
    return data, info


def _pixel_size(args: argparse.Namespace, info: Any) -> tuple[float, str]:
    if args.pixel_size is not None:
        return float(args.pixel_size), "A"
    if info is not None and not info.voxel_size_is_placeholder:
        return float(info.pixel_size), "A"
    return 1.0, "px"


def _picks_for(args: argparse.Namespace, index: int, image: Path) -> np.ndarray:
    from ..errors import InputError
    from ..io.star_coords import read_coordinates, star_micrograph_names

    try:
        if len(args.picks) == len(args.images):
            return read_coordinates(args.picks[index])
        star = args.picks[0]
        if star.suffix.lower() == ".star" and star_micrograph_names(star):
            return read_coordinates(star, micrograph=image.name)
        if len(args.images) == 1:
            return read_coordinates(star)
    except InputError as err:
        raise CLIError(str(err)) from err
    raise CLIError(
        f"--picks: give one pick file per image ({len(args.images)}), or one STAR file with "
        "an rlnMicrographName column"
    )


# ----------------------------------------------------------------------------- running


@dataclass
class Row:
    """Scores of one method on one image (or even/odd pair)."""

    image: str
    method: str
    values: dict[str, float] = field(default_factory=dict)


@dataclass
class FRCCurve:
    """FRC curves of one method on one even/odd pair, for plots."""

    image: str
    method: str
    self_frc: metrics.FRCResult
    cross_frc: metrics.FRCResult


def _validate(args: argparse.Namespace) -> None:
    if args.images and not (args.clean or args.picks):
        raise CLIError("IMAGE files given without --clean or --picks to measure them against")
    if not (args.clean or args.picks or args.even or args.odd):
        raise CLIError("nothing to measure: give --clean, --picks, or --even with --odd")
    if (args.clean or args.picks) and not args.images:
        raise CLIError("--clean and --picks need the noisy IMAGE files as positional arguments")
    if args.clean and len(args.clean) != len(args.images):
        raise CLIError(f"--clean: got {len(args.clean)} files for {len(args.images)} images")
    if len(args.even) != len(args.odd):
        raise CLIError(f"--even and --odd: got {len(args.even)} and {len(args.odd)} files")
    if args.picks and (args.radius is None or not args.radius > 0):
        raise CLIError("--picks needs --radius PX (> 0), the particle radius in pixels")
    if not 0 <= args.taper <= 0.5:
        raise CLIError("--taper must be between 0 and 0.5")
    if args.pixel_size is not None and not args.pixel_size > 0:
        raise CLIError("--pixel-size must be > 0")
    if args.plot is not None:
        plt = _require_matplotlib()
        kinds = plt.figure().canvas.get_supported_filetypes()
        plt.close("all")
        suffix = args.plot.suffix.lower().lstrip(".")
        if suffix not in kinds:
            raise CLIError(
                f"--plot {args.plot}: cannot write a plot as {suffix or 'a file without a suffix'}"
                f"; give a name ending in {', '.join('.' + k for k in ('png', 'pdf', 'svg'))}"
            )
    _guard(args)


def _guard(args: argparse.Namespace) -> None:
    """The one output guard: --csv and --plot never overwrite an input or each other."""
    from ._common import guard_outputs

    outputs = [(opt, path) for opt, path in (("--csv", args.csv), ("--plot", args.plot)) if path]
    inputs: list[tuple[str, Path | str]] = [("input", p) for p in args.images]
    for option in ("clean", "even", "odd", "picks"):
        inputs += [(f"--{option}", p) for p in getattr(args, option)]
    for spec in args.methods or []:
        for part in spec.replace("+", ",").split(","):
            if part.strip() and Path(part.strip()).is_file():
                inputs.append(("model", part.strip()))
    guard_outputs(args, outputs, inputs)


def _require_matplotlib() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CLIError(
            "--plot needs matplotlib, which is not installed: pip install matplotlib "
            "(or pip install 'napari-cryodenoise[plot]'), or leave out --plot"
        ) from None
    return plt


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def evaluate(
    args: argparse.Namespace, methods: list[Method]
) -> tuple[list[Row], list[FRCCurve], str]:
    """Run every method on every input; return the rows, the FRC curves and the length unit."""
    import time

    from ..errors import CryoDenoiseError

    rows: list[Row] = []
    curves: list[FRCCurve] = []
    unit = "A"
    kw = {"device": args.device, "precision": args.precision}
    try:
        for i, path in enumerate(args.images):
            noisy, info = _read(path)
            clean = None
            if args.clean:
                clean, _ = _read(args.clean[i])
                if clean.shape != noisy.shape:
                    raise CLIError(
                        f"{args.clean[i]}: shape {clean.shape} differs from {path} {noisy.shape}"
                    )
            sig = bg = None
            if args.picks:
                if noisy.ndim != 2:
                    raise CLIError(
                        f"{path}: --picks needs 2D micrographs, got shape {noisy.shape}"
                    )
                xy = _picks_for(args, i, path)
                sig, bg = metrics.regions_from_picks(
                    noisy.shape,
                    xy,
                    args.radius,
                    region=args.region,
                    min_separation=args.min_separation,
                    seed=args.seed,
                )
                if not sig:
                    raise CLIError(
                        f"{path}: none of the {len(xy)} picks has a signal and a "
                        "background region inside the image (check --radius)"
                    )
                _log(f"{path.name}: {len(sig)} of {len(xy)} picks paired with a background region")
            for method in methods:
                _log(f"{path.name}: {method.spec} ...")
                t0 = time.perf_counter()
                out = method.apply(noisy, **kw)
                row = Row(path.name, method.spec, {"seconds": time.perf_counter() - t0})
                if clean is not None:
                    row.values["psnr_db"] = metrics.psnr_db(out, clean)
                    row.values["snr_gt_db"] = metrics.snr_vs_truth_db(out, clean)
                    row.values["ssim"] = float(metrics.ssim(out, clean))
                if sig is not None:
                    row.values["region_snr_db"] = metrics.snr_db(out, sig, bg)
                    row.values["n_pairs"] = float(len(sig))
                rows.append(row)
        for even_path, odd_path in zip(args.even, args.odd, strict=True):
            even, info = _read(even_path)
            odd, _ = _read(odd_path)
            if even.shape != odd.shape:
                raise CLIError(
                    f"{even_path} {even.shape} and {odd_path} {odd.shape} differ in shape"
                )
            px, unit = _pixel_size(args, info)
            frc_kw = {"pixel_size": px, "taper": args.taper}
            odd_f = np.asarray(odd, dtype=np.float32)
            for method in methods:
                _log(f"{even_path.name} / {odd_path.name}: {method.spec} ...")
                t0 = time.perf_counter()
                out_even = method.apply(even, **kw)
                out_odd = method.apply(odd, **kw)
                seconds = time.perf_counter() - t0
                self_frc = metrics.fourier_ring_correlation(out_even, out_odd, **frc_kw)
                cross_frc = metrics.fourier_ring_correlation(out_even, odd_f, **frc_kw)
                curves.append(FRCCurve(even_path.name, method.spec, self_frc, cross_frc))
                rows.append(
                    Row(
                        f"{even_path.name} vs {odd_path.name}",
                        method.spec,
                        {
                            "frc_0143": self_frc.resolution(0.143),
                            "frc_halfbit": self_frc.resolution("half-bit"),
                            "xfrc_0143": cross_frc.resolution(0.143),
                            "xfrc_05": cross_frc.resolution(0.5),
                            "holdout_nmse": metrics.holdout_nmse(out_even, odd_f),
                            "seconds": seconds,
                        },
                    )
                )
    except CryoDenoiseError as err:
        raise CLIError(str(err)) from err
    return rows, curves, unit


# ----------------------------------------------------------------------------- output


def _columns(
    rows: Sequence[Row], columns: Sequence[tuple[str, str, str]] = COLUMNS
) -> list[tuple[str, str, str]]:
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
    cols = _columns(rows, columns)
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


def write_csv(path: Path, rows: Sequence[Row], unit: str) -> None:
    """Per-image results, one line per image and method."""
    import io

    from ..io.atomic import atomic_write_text

    cols = _columns(rows)
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["image", "method"] + [f"{k}_{unit}" if "frc" in k else k for k, _, _ in cols])
    for r in rows:
        w.writerow(
            [r.image, r.method]
            + ["" if r.values.get(k) is None else f"{r.values[k]:.6g}" for k, _, _ in cols]
        )
    atomic_write_text(path, buf.getvalue())
    _log(f"wrote {path}")


def write_plot(
    path: Path,
    rows: Sequence[Row],
    curves: Sequence[FRCCurve],
    unit: str,
    methods: Sequence[Method],
) -> None:
    """FRC curves (if any) and a bar chart per scalar score."""
    plt = _require_matplotlib()
    summary = summarize(rows, methods)
    scalar = [
        c
        for c in _columns(summary)
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
    _log(f"wrote {path}")


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


def run(args: argparse.Namespace) -> int:
    """Evaluate the methods and print the table."""
    _validate(args)
    methods = parse_methods(args.methods or DEFAULT_METHODS)
    rows, curves, unit = evaluate(args, methods)
    table_rows = rows if args.per_image else summarize(rows, methods)
    print(format_table(table_rows, unit=unit, per_image=args.per_image))
    for note in frc_notes(curves):
        print(note)
    if args.csv is not None:
        write_csv(args.csv, rows, unit)
    if args.plot is not None:
        write_plot(args.plot, rows, curves, unit, methods)
    return 0
