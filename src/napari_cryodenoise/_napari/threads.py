"""Compute threads of the GUI: their priority and torch thread counts (no Qt).

Whole-image and live workers call these from their own threads so the GUI
thread keeps a core on larger machines (see :func:`live_threads`) and,
optionally, the CPU (:func:`lower_thread_priority`).
"""

from __future__ import annotations

import os
import threading

#: Environment variable: niceness added to compute threads (default 0 = off).
ENV_NICE = "CRYODENOISE_GUI_NICE"
_niced = threading.local()


def lower_thread_priority() -> bool:
    """Optionally give the calling worker thread (and the threads it starts) a lower priority.

    On Linux a thread's nice value applies to that thread only and is
    inherited by threads it creates (torch's OpenMP team), so with
    ``$CRYODENOISE_GUI_NICE=10`` the GUI thread wins the CPU whenever it has
    work. Off by default: measured on a shared 2-core machine it lowered the
    event loop's median lateness during a whole-image denoise from ~25 to
    ~10 ms but cost ~20 % throughput against other processes, and the niced
    thread is one of Qt's shared pool threads (it stays niced). Done once per
    thread; no-op elsewhere.

    Returns
    -------
    bool
        True if the priority was lowered now.

    """
    if getattr(_niced, "done", False) or threading.current_thread() is threading.main_thread():
        return False
    _niced.done = True
    try:
        increment = int(os.environ.get(ENV_NICE, "0"))
    except ValueError:
        increment = 0
    if increment <= 0 or not hasattr(os, "setpriority") or not os.uname().sysname == "Linux":
        return False
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + increment))
    except OSError:
        return False
    return True


_default_threads: list[int] = []


def default_threads() -> int:
    """Torch's intra-op thread count as it was before this module changed it."""
    if not _default_threads:
        import torch

        _default_threads.append(max(1, int(torch.get_num_threads())))
    return _default_threads[0]


#: Machines with more cores than this keep one core for the GUI during live tiles.
RESERVE_CORE_ABOVE = 4


def live_threads(cores: int | None = None) -> int:
    """Torch threads for live tiles: every core on small machines, else all but one.

    Keeping a core for the GUI costs ``1/cores`` of the tile throughput: 50 % on a
    2-core machine, where it measured (fei-extended.mrc at bin 3, 2 x 2 tiles of 640
    px, medians of 3) 9.5-10.5 s instead of 7.5 s for the whole visible plane, while
    with both cores the event loop's p99 lateness during the tiles stayed at 30-42 ms
    and its maximum at 63-91 ms (the live-view targets are 50 and 200 ms). Above
    :data:`RESERVE_CORE_ABOVE` cores the reserved core costs little throughput and
    keeps the GUI smooth next to other work.

    Parameters
    ----------
    cores : int, optional
        Torch's thread count (default: as it was before this module changed it).

    """
    n = default_threads() if cores is None else max(1, int(cores))
    return n - 1 if n > RESERVE_CORE_ABOVE else n
