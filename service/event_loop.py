"""Keep the event loop ahead of the work it hands out, and watch how late it runs.

Inference and tokenisation threads run niced. On a 2-core box ORT's two threads and the tokenizer
pool can keep every core busy, and the event loop, which parses requests, refuses what cannot be
served and answers /healthz and /metrics, would then wait its turn behind them: refusals and probes
slow down exactly when they matter. A higher nice value (lower priority) for every thread but the
loop's lets the loop run as soon as it has work, while the workers still take every cycle it leaves
(nice only matters under contention). Linux only; elsewhere, or when the kernel refuses, it logs and
does nothing.

What delay remains is measured (:class:`LoopLag`): admission adds it to every estimate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time

log = logging.getLogger(__name__)


def nice_thread(niceness: int) -> None:
    """Raise the calling thread's nice value to ``niceness`` (a ThreadPoolExecutor initializer)."""
    _renice(threading.get_native_id(), niceness)


def nice_other_threads(niceness: int) -> int:
    """Raise the nice value of every thread of this process except the calling one (the event loop's);
    returns how many were changed. Threads ORT created for its sessions are among them."""
    if niceness <= 0 or not os.path.isdir("/proc/self/task"):
        return 0
    me = threading.get_native_id()
    changed = 0
    for name in os.listdir("/proc/self/task"):
        tid = int(name)
        if tid != me and _renice(tid, niceness):
            changed += 1
    return changed


def _renice(tid: int, niceness: int) -> bool:
    if niceness <= 0 or not hasattr(os, "setpriority"):
        return False
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < niceness:
            os.setpriority(os.PRIO_PROCESS, tid, niceness)  # on Linux PRIO_PROCESS with a tid is per thread
        return True
    except OSError as err:  # the thread ended meanwhile, or the platform refuses
        log.debug("could not renice thread %s: %s", tid, err)
        return False


class LoopLag:
    """How late the event loop wakes up: the delay every request pays before and after its compute.

    A task sleeps ``interval_s`` and measures by how much it overslept. The reading rises at once
    and falls by half per interval, so it tracks the recent worst rather than the average.
    """

    def __init__(self, interval_s: float = 0.02) -> None:
        self.interval_s = interval_s
        self.lag_s = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.interval_s)
            late = max(0.0, time.monotonic() - before - self.interval_s)
            self.lag_s = max(late, self.lag_s / 2)
