"""Keep the event loop ahead of the work it hands out: inference and tokenisation threads run niced.

On a 2-core box ORT's two threads and the tokenizer pool can keep every core busy, and the event loop,
which parses requests, refuses what cannot be served and answers /healthz and /metrics, would then wait
its turn behind them: refusals and probes slow down exactly when they matter. A higher nice value
(lower priority) for every thread but the loop's lets the loop run as soon as it has work, while the
workers still take every cycle it leaves (nice only matters under contention). Linux only; elsewhere,
or when the kernel refuses, it logs and does nothing.
"""

from __future__ import annotations

import logging
import os
import threading

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
