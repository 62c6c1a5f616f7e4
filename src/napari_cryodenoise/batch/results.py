"""What happened to each item of a batch (:class:`ItemResult`) and to the batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["BatchSummary", "ItemResult", "Status"]

#: The outcome of one item.
Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class ItemResult:
    """What happened to one micrograph.

    Attributes
    ----------
    input, output : pathlib.Path
        The pair.
    status : {"done", "skipped", "failed"}
        ``skipped``: a complete output was already there.
    reason : str
        Why it failed (the last attempt's error), or "" otherwise.
    attempts : int
        Tries made in this run (0 for skipped items). Dask's own re-runs after a
        worker died are not counted here.
    seconds : float
        Wall time of the successful (or last) attempt on its worker.
    worker : str
        ``host:pid`` of the process that did the work.

    """

    input: Path
    output: Path
    status: Status
    reason: str = ""
    attempts: int = 0
    seconds: float = 0.0
    worker: str = ""


@dataclass
class BatchSummary:
    """Outcome of :func:`run_batch`, in input order.

    Attributes
    ----------
    results : list of ItemResult
    elapsed : float
        Wall time of the run in seconds (cluster start-up included).
    workers : int
        Workers that were connected when the work was submitted (0 in-process).
    out_star : pathlib.Path or None
        The STAR list written, if any.

    """

    results: list[ItemResult] = field(default_factory=list)
    elapsed: float = 0.0
    workers: int = 0
    out_star: Path | None = None

    def _with(self, status: Status) -> list[ItemResult]:
        return [r for r in self.results if r.status == status]

    @property
    def done(self) -> list[ItemResult]:
        """Items denoised in this run."""
        return self._with("done")

    @property
    def skipped(self) -> list[ItemResult]:
        """Items whose complete output already existed."""
        return self._with("skipped")

    @property
    def failed(self) -> list[ItemResult]:
        """Items that failed after all retries."""
        return self._with("failed")

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed

    @property
    def outputs(self) -> list[Path]:
        """Outputs that exist and are complete after the run (done + skipped), in input order."""
        return [r.output for r in self.results if r.status != "failed"]

    def format(self) -> str:
        """Report counts and throughput, then one line per failure."""
        n_done = len(self.done)
        rate = 60.0 * n_done / self.elapsed if self.elapsed > 0 and n_done else 0.0
        lines = [
            f"{n_done} done, {len(self.skipped)} skipped (already complete), "
            f"{len(self.failed)} failed, in {self.elapsed:.1f} s"
            + (f" ({rate:.1f} micrographs/min)" if n_done else "")
        ]
        lines += [f"  FAILED {r.input}: {r.reason}" for r in self.failed]
        if self.out_star is not None:
            lines.append(f"  list of denoised micrographs: {self.out_star}")
        return "\n".join(lines)
