"""Dynamic batching for one model variant: one asyncio task owns a bounded queue of jobs.

A *job* is one request's encoded pairs. The batcher loop

1. waits until pairs are queued, then up to ``max_wait`` until a full ORT run is (under load the
   queue is never short, so the wait only matters when traffic is light);
2. cuts a *step* from the head of the queue, FIFO, up to ``max_batch_pairs`` pairs and
   ``max_batch_tokens`` tokens (a large request spans several steps), dropping jobs whose deadline
   passed while they queued, before any compute is spent on them;
3. plans the step's ORT *runs* (:func:`plan_runs`): pairs are length-sorted within groups of
   consecutive jobs and cut into runs of ``max_run_pairs``, each padded only to its own longest pair
   (41% of a naively padded batch of 32 Home Depot titles is padding, 25% of sorted runs of 16);
4. runs them back to back in a dedicated thread (ORT releases the GIL, the event loop stays free) and
   scatters the probabilities back after each run, completing each job's future as soon as its last
   pair is scored, so the first request of a step does not wait for the last.

Admission control (:meth:`Batcher.admit`) estimates the queue delay from the measured cost per pair:
a request that cannot finish inside its deadline is refused at once instead of timing out in the queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from service.errors import InferenceFailed, NotReady, Overloaded, ShedReason
from service.metrics import ServiceMetrics

log = logging.getLogger(__name__)

Example = tuple[list[int], list[int]]
PairRef = tuple[int, int]  # (index of the slice in the step, index of the pair in its job)
RunOutcome = np.ndarray | Exception  # a run's probabilities, or what it raised


class Runner(Protocol):
    """What the batcher needs from a model: probabilities for a list of encoded pairs (one ORT run)."""

    def run(self, examples: Sequence[Example]) -> np.ndarray: ...


@dataclass(frozen=True)
class BatchLimits:
    max_batch_pairs: int = 64
    max_batch_tokens: int = 4096
    max_run_pairs: int = 16
    sort_window_pairs: int = 0
    max_wait_s: float = 0.002
    max_queue_pairs: int = 1024


@dataclass(eq=False)
class Job:
    """One request's pairs on their way through the queue; ``future`` gets the (n x labels) probabilities."""

    examples: Sequence[Example]
    deadline: float  # time.monotonic() by which the caller needs the answer
    future: asyncio.Future[np.ndarray]
    probs: np.ndarray
    enqueued_at: float = field(default_factory=time.monotonic)
    taken: int = 0  # pairs handed to steps so far
    scored: int = 0

    @property
    def pending(self) -> int:
        return len(self.examples) - self.taken

    @property
    def started(self) -> bool:
        return self.taken > 0


@dataclass(frozen=True)
class Slice:
    job: Job
    start: int
    stop: int

    def lengths(self) -> list[int]:
        return [len(self.job.examples[i][0]) for i in range(self.start, self.stop)]


def plan_runs(
    slice_lengths: Sequence[Sequence[int]], max_run_pairs: int, sort_window_pairs: int = 0
) -> list[list[PairRef]]:
    """Order a step's pairs into ORT runs that waste little padding and finish early jobs early.

    Consecutive slices are grouped until a group holds at least ``sort_window_pairs`` pairs (default:
    ``max_run_pairs``); each group is sorted by length and cut into runs of ``max_run_pairs``. With the
    default a big request (32 pairs) is sorted on its own and completes after its own runs, while small
    requests are pooled so they still sort well. A wider window pads less (HD titles, 32-pair requests,
    runs of 16: 25% padding sorted alone, 16% sorted in pairs of requests) but the first request of a
    group waits for the whole group.
    """
    window = max(sort_window_pairs, max_run_pairs)
    runs: list[list[PairRef]] = []
    group: list[tuple[int, PairRef]] = []

    def flush() -> None:
        group.sort(key=lambda item: item[0])
        refs = [ref for _, ref in group]
        runs.extend(refs[i : i + max_run_pairs] for i in range(0, len(refs), max_run_pairs))
        group.clear()

    for s, lengths in enumerate(slice_lengths):
        group.extend((length, (s, i)) for i, length in enumerate(lengths))
        if len(group) >= window:
            flush()
    if group:
        flush()
    return runs


class PairCost:
    """Seconds of inference per pair, an exponentially weighted mean over real steps.

    It rises fast and falls slowly: a slowdown (a noisy neighbour, a long-text burst) must tighten
    admission at once, while a single fast step should not reopen the gates to a queue we cannot serve.
    """

    def __init__(self, initial_s: float = 0.002, alpha_up: float = 0.5, alpha_down: float = 0.1) -> None:
        self.seconds = initial_s
        self.alpha_up = alpha_up
        self.alpha_down = alpha_down

    def update(self, seconds: float, pairs: int) -> None:
        if pairs > 0:
            observed = seconds / pairs
            alpha = self.alpha_up if observed > self.seconds else self.alpha_down
            self.seconds += alpha * (observed - self.seconds)


class Batcher:
    def __init__(
        self, variant: str, runner: Runner, n_labels: int, limits: BatchLimits, metrics: ServiceMetrics
    ) -> None:
        self.variant = variant
        self.runner = runner
        self.n_labels = n_labels
        self.limits = limits
        self.metrics = metrics
        self.cost = PairCost()
        self._queue: deque[Job] = deque()
        self._queued_pairs = 0
        self._step_pairs_left = 0  # pairs of the running step not scored yet (for the delay estimate)
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # One thread: steps are sequential anyway, and a second run would only fight for the same cores.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ort-{variant}")
        self._depth = metrics.queue_depth_pairs.labels(variant=variant)

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"batcher-{self.variant}")

    async def stop(self) -> None:
        """Stop the loop and refuse what is still queued (the server drains requests before this)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():
                job.future.set_exception(NotReady("the server is shutting down"))
        self._set_queued(0)
        self._executor.shutdown(wait=True)

    async def warmup(self, examples: Sequence[Example], rounds: int = 2) -> float:
        """Run a realistic step a few times so allocation is paid now and the pair cost is measured."""

        def run_all() -> None:
            for run in self._plan([[len(ids) for ids, _ in examples]]):
                self.runner.run([examples[i] for _, i in run])

        seconds = 0.0
        for _ in range(rounds):
            started = time.perf_counter()
            await asyncio.get_running_loop().run_in_executor(self._executor, run_all)
            seconds = time.perf_counter() - started
        self.cost.seconds = seconds / max(1, len(examples))
        return seconds

    # --- admission and submission -------------------------------------------------------------

    @property
    def queued_pairs(self) -> int:
        return self._queued_pairs

    def estimate_delay(self, pairs: int) -> float:
        """Seconds until ``pairs`` more pairs would be scored: the rest of the running step, the queue
        ahead, the pairs themselves, and the batching wait."""
        ahead = self._step_pairs_left + self._queued_pairs + pairs
        return ahead * self.cost.seconds + self.limits.max_wait_s

    def admit(self, pairs: int, deadline: float, *, check_deadline: bool = True) -> None:
        """Refuse now (raise :class:`Overloaded`) what the queue cannot hold or cannot finish in time."""
        if self._queued_pairs + pairs > self.limits.max_queue_pairs:
            self._shed("queue_full")
            raise Overloaded(
                "queue_full",
                f"{self._queued_pairs} pairs are queued (limit {self.limits.max_queue_pairs}); retry later",
                self.estimate_delay(0),
            )
        if not check_deadline:
            return
        delay = self.estimate_delay(pairs)
        budget = deadline - time.monotonic()
        if delay > budget:
            self._shed("deadline_unmeetable")
            raise Overloaded(
                "deadline_unmeetable",
                f"estimated {delay * 1000:.0f} ms until scored exceeds the remaining "
                f"{max(budget, 0) * 1000:.0f} ms of the deadline",
                self.estimate_delay(0),
            )

    def submit(self, examples: Sequence[Example], deadline: float) -> Job:
        if self._task is None:
            raise NotReady(f"variant {self.variant} is not running")
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        job = Job(examples, deadline, future, np.empty((len(examples), self.n_labels), dtype=np.float32))
        self._queue.append(job)
        self._set_queued(self._queued_pairs + len(examples))
        self._wakeup.set()
        return job

    async def result(self, job: Job) -> np.ndarray:
        """The job's probabilities; at its deadline, a job still queued is withdrawn (503), while one
        already being computed is awaited: the work is nearly done and dropping it would waste it."""
        try:
            return await asyncio.wait_for(
                asyncio.shield(job.future), max(0.0, job.deadline - time.monotonic())
            )
        except TimeoutError:
            if not job.started and self._withdraw(job):
                raise self._expired() from None
            return await job.future
        except asyncio.CancelledError:
            self._withdraw(job)  # the caller went away: free its place in the queue
            raise

    def _withdraw(self, job: Job) -> bool:
        if job.future.done() or job not in self._queue:
            return False
        self._queue.remove(job)
        self._set_queued(self._queued_pairs - job.pending)
        job.future.cancel()
        return True

    # --- the loop -------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._fill_window()
            step = self._cut()
            if step:
                try:
                    await self._run_step(step)
                except Exception:  # never let one bad step kill the variant's loop
                    log.exception("batcher step failed", extra={"variant": self.variant})
                    self._fail(step, InferenceFailed("inference failed"))
                finally:
                    self._step_pairs_left = 0

    async def _fill_window(self) -> None:
        """Wait until a full ORT run is queued or the oldest job has waited ``max_wait``.

        Only a run that is not yet full is worth waiting for: more pairs than a run makes more runs, not
        cheaper ones (on CPU; on a GPU set ``max_run_pairs`` = ``max_batch_pairs`` to wait for a full step).
        """
        until = self._queue[0].enqueued_at + self.limits.max_wait_s
        enough = min(self.limits.max_run_pairs, self.limits.max_batch_pairs)
        while self._queued_pairs < enough and (left := until - time.monotonic()) > 0:
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), left)
            except TimeoutError:
                return

    def _cut(self) -> list[Slice]:
        """Take up to the step limits from the head of the queue, FIFO; drop expired and withdrawn jobs."""
        now = time.monotonic()
        slices: list[Slice] = []
        pairs = tokens = 0
        full = False
        while self._queue and not full:
            job = self._queue[0]
            if job.future.done():  # failed earlier in another step
                self._pop_head()
                continue
            if not job.started and job.deadline <= now:
                self._pop_head()
                job.future.set_exception(self._expired())
                continue
            start = stop = job.taken
            while stop < len(job.examples):
                n_tokens = len(job.examples[stop][0])
                if pairs >= self.limits.max_batch_pairs or (
                    pairs and tokens + n_tokens > self.limits.max_batch_tokens
                ):
                    full = True
                    break
                pairs, tokens, stop = pairs + 1, tokens + n_tokens, stop + 1
            if stop > start:
                if not job.started:
                    self.metrics.queue_wait.labels(variant=self.variant).observe(now - job.enqueued_at)
                job.taken = stop
                slices.append(Slice(job, start, stop))
                self._set_queued(self._queued_pairs - (stop - start))
            if job.pending == 0:
                self._queue.popleft()
        return slices

    def _pop_head(self) -> None:
        job = self._queue.popleft()
        self._set_queued(self._queued_pairs - job.pending)

    async def _run_step(self, step: list[Slice]) -> None:
        """All runs of a step in one trip to the batcher's thread: the thread goes from run to run
        without waiting for the event loop (which may be busy parsing requests), and each run's
        results come back to the loop as soon as the run ends."""
        runs = self._plan([s.lengths() for s in step])
        n_pairs = self._step_pairs_left = sum(s.stop - s.start for s in step)
        padded = sum(len(run) * max(len(self._example(step, ref)[0]) for ref in run) for run in runs)
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        await loop.run_in_executor(self._executor, self._execute, step, runs, loop)
        seconds = time.perf_counter() - started
        self.cost.update(seconds, n_pairs)
        self.metrics.inference_duration.labels(variant=self.variant).observe(seconds)
        self.metrics.batch_size_pairs.labels(variant=self.variant).observe(n_pairs)
        self.metrics.batch_tokens.labels(variant=self.variant).observe(padded)

    def _plan(self, slice_lengths: Sequence[Sequence[int]]) -> list[list[PairRef]]:
        return plan_runs(slice_lengths, self.limits.max_run_pairs, self.limits.sort_window_pairs)

    @staticmethod
    def _example(step: list[Slice], ref: PairRef) -> Example:
        sl = step[ref[0]]
        return sl.job.examples[sl.start + ref[1]]

    def _execute(self, step: list[Slice], runs: list[list[PairRef]], loop: asyncio.AbstractEventLoop) -> None:
        """In the batcher's thread: run each run and hand its outcome to the loop."""
        for run in runs:
            for refs, outcome in self._run_isolated(step, run):
                loop.call_soon_threadsafe(self._deliver, step, refs, outcome)

    def _run_isolated(self, step: list[Slice], run: list[PairRef]) -> list[tuple[list[PairRef], RunOutcome]]:
        """A failed run shared by several jobs is retried job by job, so one job's failure cannot
        poison the others; a job that still fails gets the error."""
        outcome = self._try_run(step, run)
        by_slice: dict[int, list[PairRef]] = {}
        for ref in run:
            by_slice.setdefault(ref[0], []).append(ref)
        if not isinstance(outcome, Exception) or len(by_slice) == 1:
            return [(run, outcome)]
        return [(refs, self._try_run(step, refs)) for refs in by_slice.values()]

    def _try_run(self, step: list[Slice], refs: list[PairRef]) -> RunOutcome:
        try:
            return self.runner.run([self._example(step, ref) for ref in refs])
        except Exception as err:  # noqa: BLE001 - a backend failure is the run's outcome, never the thread's
            return err

    def _deliver(self, step: list[Slice], refs: list[PairRef], outcome: RunOutcome) -> None:
        """On the loop: scatter a run's probabilities to its jobs, completing those now fully scored."""
        self._step_pairs_left -= len(refs)
        slices = [step[s] for s in dict.fromkeys(s for s, _ in refs)]
        if isinstance(outcome, Exception):
            log.error("inference failed: %s", outcome, extra={"variant": self.variant})
            self._fail(slices, InferenceFailed("inference failed"))
            return
        for row, (s, i) in enumerate(refs):
            step[s].job.probs[step[s].start + i] = outcome[row]
            step[s].job.scored += 1
        for sl in slices:
            if sl.job.scored == len(sl.job.examples) and not sl.job.future.done():
                sl.job.future.set_result(sl.job.probs)

    def _fail(self, slices: Sequence[Slice], error: Exception) -> None:
        for sl in slices:
            if not sl.job.future.done():
                sl.job.future.set_exception(error)

    def _expired(self) -> Overloaded:
        self._shed("expired_in_queue")
        return Overloaded(
            "expired_in_queue", "the deadline passed while the request was queued", self.estimate_delay(0)
        )

    def _shed(self, reason: ShedReason) -> None:
        self.metrics.shed.labels(variant=self.variant, reason=reason).inc()

    def _set_queued(self, pairs: int) -> None:
        self._queued_pairs = pairs
        self._depth.set(pairs)
