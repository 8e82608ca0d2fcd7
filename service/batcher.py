"""Dynamic batching for one model variant: one asyncio task owns a bounded queue of jobs.

A *job* is one request's encoded pairs. The batcher loop

1. waits until pairs are queued, then, while other admitted requests are still being tokenised, up
   to ``max_wait`` until a full ORT run is (for requests not received yet only ``arrival_wait``, 0 by
   default: a lone request does not wait; under load the queue fills while a step runs);
2. cuts a *step* from the head of the queue, FIFO, up to ``max_batch_pairs`` pairs and
   ``max_batch_tokens`` tokens (a large request spans several steps), dropping jobs whose budget ran
   out while they queued (or that could no longer be scored by their caller's deadline), before any
   compute is spent on them;
3. plans the step's ORT *runs* (:func:`plan_runs`): pairs are length-sorted within groups of
   consecutive jobs and cut into runs of ``max_run_pairs``, each padded only to its own longest pair
   (41% of a naively padded batch of 32 Home Depot titles is padding, 25% of sorted runs of 16);
4. runs them back to back in a dedicated thread (ORT releases the GIL, the event loop stays free) and
   scatters the probabilities back after each run, completing each job's future as soon as its last
   pair is scored, so the first request of a step does not wait for the last.

Admission control (:meth:`Batcher.admit`) estimates when a request would start and be scored from
the cost model of request shape (:mod:`service.cost`: the run profile measured at warm-up, the run
plan, the compute queued ahead, the live slowdown) and refuses at once what its budget
(:mod:`service.deadline`) cannot hold, instead of letting it time out in the queue.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from service.cost import CostModel, Estimate, RunProfile, profile_shapes
from service.deadline import Budget
from service.errors import InferenceFailed, NotReady, Overloaded, ShedReason
from service.metrics import ServiceMetrics
from service.timing import Timeline

log = logging.getLogger(__name__)

Example = tuple[list[int], list[int]]
PairRef = tuple[int, int]  # (index of the slice in the step, index of the pair in its job)
RunOutcome = np.ndarray | Exception  # a run's probabilities, or what it raised
RunTiming = tuple[int, int, float]  # (pairs, padded length, seconds) of one measured run


class Runner(Protocol):
    """What the batcher needs from a model: probabilities for a list of encoded pairs (one ORT run)."""

    def run(self, examples: Sequence[Example]) -> np.ndarray: ...


@dataclass(frozen=True)
class BatchLimits:
    max_batch_pairs: int = 64
    max_batch_tokens: int = 4096
    max_run_pairs: int = 16
    sort_window_pairs: int = 0
    max_wait_s: float = 0.002  # for requests admitted and being tokenised
    arrival_wait_s: float = 0.0  # for requests not received yet
    max_queue_pairs: int = 1024


@dataclass(eq=False)
class Job:
    """One request's pairs on their way through the queue; ``future`` gets the (n x labels) probabilities."""

    examples: Sequence[Example]
    budget: Budget
    future: asyncio.Future[np.ndarray]
    probs: np.ndarray
    cost_s: float  # profiled seconds of its runs (what it adds to the queue's estimate)
    admitted: Estimate | None = None  # what admission estimated, checked against the truth when scored
    timeline: Timeline | None = None  # the request's Server-Timing marks (queue, dispatch, inference)
    enqueued_at: float = field(default_factory=time.monotonic)
    taken: int = 0  # pairs handed to steps so far
    scored: int = 0

    @property
    def pending(self) -> int:
        return len(self.examples) - self.taken

    @property
    def pending_cost_s(self) -> float:
        return self.cost_s * self.pending / max(1, len(self.examples))

    def too_late(self, now: float, slowdown: float) -> bool:
        """Not started and past use: its start-by time passed, or (caller deadline) it could no longer
        be scored by the deadline even if it started now."""
        if self.started:
            return False
        if now >= self.budget.start_by:
            return True
        return now + self.cost_s * slowdown > self.budget.finish_by

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


class Batcher:
    def __init__(
        self,
        variant: str,
        runner: Runner,
        n_labels: int,
        limits: BatchLimits,
        metrics: ServiceMetrics,
        max_length: int = 512,
        loop_lag: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.variant = variant
        self.runner = runner
        self.n_labels = n_labels
        self.limits = limits
        self.metrics = metrics
        self.cost = CostModel(limits.max_run_pairs, max_length)
        self.loop_lag = loop_lag
        self.probe_interval_s = 1.0
        self._last_probe = -math.inf
        self._queue: deque[Job] = deque()
        self._queued_pairs = 0
        self._queued_cost_s = 0.0  # profiled seconds of the queued pairs
        # Admitted requests being tokenised are not queued yet but will be: their cost is reserved at
        # admission, or a burst arriving together would each see the queue without the others.
        self._reserved_s = 0.0
        self._reserved_pairs = 0
        self._step_cost_left_s = 0.0  # profiled seconds of the running step's runs not finished yet
        self._running = False
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # One thread: steps are sequential anyway, and a second run would only fight for the same cores.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ort-{variant}")
        self._depth = metrics.queue_depth_pairs.labels(variant=variant)
        metrics.queue_estimated_seconds.labels(variant=variant).set_function(lambda: self.ahead_s())
        metrics.cost_slowdown.labels(variant=variant).set_function(lambda: self.cost.factor)

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
        self._set_queued(0, 0.0)
        self._executor.shutdown(wait=True)

    async def warmup(self, example: Example, repeats: int = 3) -> float:
        """Measure the run profile (:class:`~service.cost.RunProfile`) on a grid of run shapes.

        Every shape real traffic can produce is run here once untimed, so allocation is paid before
        the first request, then ``repeats`` times timed. ``example`` supplies real token ids.
        """
        ids, _ = example
        pairs, lengths = profile_shapes(self.limits.max_run_pairs, self.cost.max_length)

        def time_run(b: int, length: int) -> float:
            # a length-sorted run as traffic makes it: pairs of several lengths, the longest = length
            sizes = [max(2, length - (length // 2) * k // max(1, b - 1)) for k in range(b)]
            run = [((ids * (n // max(1, len(ids)) + 1))[:n], [0] * n) for n in sizes]
            started = time.perf_counter()
            self.runner.run(run)
            return time.perf_counter() - started

        started = time.perf_counter()
        self.cost.profile = await asyncio.get_running_loop().run_in_executor(
            self._executor, RunProfile.measure, time_run, pairs, lengths, repeats
        )
        return time.perf_counter() - started

    # --- admission and submission -------------------------------------------------------------

    @property
    def queued_pairs(self) -> int:
        return self._queued_pairs

    @property
    def idle(self) -> bool:
        return not self._queue and not self._running and not self._reserved_pairs

    def describe(self) -> dict[str, object]:
        """What admission currently believes, for ``GET /admission`` (an SRE asking why it sheds)."""
        cost = self.cost
        typical = min(cost.max_length, 32)
        return {
            "queued_pairs": self._queued_pairs,
            "admitted_unqueued_pairs": self._reserved_pairs,
            "queue_estimated_ms": round(self.ahead_s() * 1000, 2),
            "running": self._running,
            "slowdown": round(cost.factor, 3),
            "estimate_error_multiplier": {state: round(e.multiplier, 3) for state, e in cost.errors.items()},
            "step_overhead_ms": round(cost.overhead.seconds * 1000, 3),
            "last_run_age_s": round(cost.slowdown.age_s, 3),
            "chars_per_token": round(cost.chars_per_token.value, 3),
            "max_wait_ms": self.limits.max_wait_s * 1000,
            "arrival_wait_ms": self.limits.arrival_wait_s * 1000,
            "loop_lag_ms": round(self.loop_lag() * 1000, 3),
            "lone_request_ms": {"tokens_per_pair": typical, "by_services": cost.lone_estimates_ms(typical)},
            "run_profile": cost.profile.as_dict(),
        }

    def ahead_s(self) -> float:
        """Estimated seconds of compute a request arriving now would wait behind."""
        return (self._step_cost_left_s + self._queued_cost_s + self._reserved_s) * self.cost.factor

    def estimate(self, lengths: Sequence[int]) -> Estimate:
        """When a request of these pair lengths would start and be scored, if queued now."""
        idle = self.idle
        pooled = not idle
        profiled = self.cost.runs_seconds(lengths, pooled)
        return Estimate(
            own_s=self.cost.slowed(profiled, pooled),
            ahead_s=self.ahead_s(),
            wait_s=self._window_s() + self.loop_lag(),
            idle=idle,
            profiled_s=profiled,
            pairs=len(lengths),
        )

    def admit(self, lengths: Sequence[int], budget: Budget, *, check_deadline: bool = True) -> Estimate:
        """Refuse now (raise :class:`Overloaded`) what the queue cannot hold or cannot serve in budget.

        With a caller deadline the request must be *scored* by it; with the default budget it must
        *start* by it. When only the slowdown factor makes it miss (as profiled it would fit), nothing
        else is queued or running and no run has been measured for ``probe_interval_s`` (the factor
        is stale, only decaying), it is admitted as a probe, at most once per ``probe_interval_s``:
        its run measures whether the slowdown is still real.
        """
        pairs = len(lengths)
        if self._queued_pairs + self._reserved_pairs + pairs > self.limits.max_queue_pairs:
            self._shed("queue_full")
            raise Overloaded(
                "queue_full",
                f"{self._queued_pairs} pairs are queued (limit {self.limits.max_queue_pairs}); retry later",
                self.ahead_s(),
            )
        estimate = self.estimate(lengths)
        now = time.monotonic()
        left = budget.end - now
        needed = estimate.until_scored_s if budget.bounds_compute else estimate.until_started_s
        needed *= self.cost.error(estimate).multiplier
        # Without a caller deadline the budget bounds the wait behind other work; on an idle batcher
        # there is none, so no reading of the loop's lag or of a slowdown may refuse it.
        unbounded_and_idle = not budget.bounds_compute and estimate.idle
        if (not check_deadline or needed <= left or unbounded_and_idle
                or self._probe_allowed(lengths, budget, left, now)):
            self._reserve(estimate)
            return estimate
        self._shed("deadline_unmeetable")
        what = "scored" if budget.bounds_compute else "started (no X-Deadline-Ms: the default budget bounds queue wait)"
        raise Overloaded(
            "deadline_unmeetable",
            f"estimated {needed * 1000:.0f} ms (error margin included) until {what} exceeds the remaining "
            f"{max(left, 0) * 1000:.0f} ms of the {budget.ms:g} ms budget",
            self.ahead_s(),
        )

    def _probe_allowed(self, lengths: Sequence[int], budget: Budget, left: float, now: float) -> bool:
        stale = self.cost.slowdown.age_s >= self.probe_interval_s
        if not (self.idle and stale) or now - self._last_probe < self.probe_interval_s or self.cost.factor <= 1:
            return False
        profiled = self._window_s() + (self.cost.runs_seconds(lengths) if budget.bounds_compute else 0.0)
        if profiled > left:
            return False
        self._last_probe = now
        return True

    def _reserve(self, estimate: Estimate) -> None:
        self._reserved_s += estimate.profiled_s
        self._reserved_pairs += estimate.pairs

    def release(self, estimate: Estimate) -> None:
        """Give back what admission reserved (at submission, or when the request fails before it)."""
        self._reserved_s = max(0.0, self._reserved_s - estimate.profiled_s)
        self._reserved_pairs = max(0, self._reserved_pairs - estimate.pairs)
        if not self._reserved_pairs:
            self._reserved_s = 0.0

    def submit(
        self,
        examples: Sequence[Example],
        budget: Budget,
        admitted: Estimate | None = None,
        timeline: Timeline | None = None,
    ) -> Job:
        """Queue an admitted request's encoded pairs (its reservation becomes the queued job)."""
        if admitted is not None:
            self.release(admitted)
        if self._task is None:
            raise NotReady(f"variant {self.variant} is not running")
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        cost = self.cost.runs_seconds([len(ids) for ids, _ in examples], pooled=not self.idle)
        if not budget.bounds_compute:
            # the default budget bounds the queue wait: it starts now, not before tokenisation
            budget = dataclasses.replace(budget, started=time.monotonic())
        job = Job(
            examples, budget, future, np.empty((len(examples), self.n_labels), dtype=np.float32), cost, admitted,
            timeline,
        )
        self._queue.append(job)
        self._set_queued(self._queued_pairs + len(examples), self._queued_cost_s + cost)
        self._wakeup.set()
        return job

    async def result(self, job: Job) -> np.ndarray:
        """The job's probabilities. At the end of its budget a job still queued is withdrawn (503),
        while one already being computed is awaited: admission and the drop of queued work that can
        no longer finish in time keep that rare, and dropping it would waste work nearly done.

        The job's future is awaited directly and the budget's end is a timer on the loop (not
        ``wait_for`` over ``shield``, whose chained futures cost the answer extra loop iterations)."""

        def budget_ended() -> None:
            if not job.started and not job.future.done() and self._withdraw(job):
                job.future.set_exception(self._expired())

        timer = asyncio.get_running_loop().call_later(max(0.0, job.budget.end - time.monotonic()), budget_ended)
        try:
            return await job.future
        except asyncio.CancelledError:
            self._withdraw(job)  # the caller went away: free its place in the queue
            raise
        finally:
            timer.cancel()

    def _withdraw(self, job: Job) -> bool:
        """Take a job out of the queue (its future left to the caller); False if it is not queued."""
        if job not in self._queue:
            return False
        self._queue.remove(job)
        self._set_queued(self._queued_pairs - job.pending, self._queued_cost_s - job.pending_cost_s)
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
                    self._step_cost_left_s = 0.0
                    self._running = False

    def _window_s(self) -> float:
        """How long the batcher would now hold a run that is not full: ``max_wait`` while admitted requests
        are being tokenised, ``arrival_wait`` for requests not received yet, whichever is longer."""
        return max(self.limits.arrival_wait_s, self.limits.max_wait_s if self._reserved_pairs else 0.0)

    async def _fill_window(self) -> None:
        """Wait until a full ORT run is queued or the oldest job has waited as long as :meth:`_window_s`.

        Only a run that is not yet full is worth waiting for: more pairs than a run makes more runs, not
        cheaper ones (on CPU; on a GPU set ``max_run_pairs`` = ``max_batch_pairs`` to wait for a full step).
        Pairs already on their way (admitted, being tokenised) are worth ``max_wait``; traffic that may not
        come is worth only ``arrival_wait``, 0 by default, so a lone request does not wait (under load
        the queue fills while a step runs).
        """
        enough = min(self.limits.max_run_pairs, self.limits.max_batch_pairs)
        while (self._queued_pairs < enough
               and (left := self._queue[0].enqueued_at + self._window_s() - time.monotonic()) > 0):
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), left)
            except TimeoutError:
                return

    def _cut(self) -> list[Slice]:
        """Take up to the step limits from the head of the queue, FIFO; drop expired and withdrawn jobs."""
        now = time.monotonic()
        slowdown = self.cost.factor
        slices: list[Slice] = []
        pairs = tokens = 0
        full = False
        while self._queue and not full:
            job = self._queue[0]
            if job.future.done():  # failed earlier in another step
                self._pop_head()
                continue
            if job.too_late(now, slowdown):
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
                    if job.timeline is not None:
                        job.timeline.mark("queue", now)
                cost = job.pending_cost_s
                job.taken = stop
                slices.append(Slice(job, start, stop))
                self._set_queued(self._queued_pairs - (stop - start), self._queued_cost_s - cost + job.pending_cost_s)
            if job.pending == 0:
                self._queue.popleft()
        return slices

    def _pop_head(self) -> None:
        job = self._queue.popleft()
        self._set_queued(self._queued_pairs - job.pending, self._queued_cost_s - job.pending_cost_s)

    async def _run_step(self, step: list[Slice]) -> None:
        """All runs of a step in one trip to the batcher's thread: the thread goes from run to run
        without waiting for the event loop (which may be busy parsing requests), and each run's
        results come back to the loop as soon as the run ends."""
        runs = self._plan([s.lengths() for s in step])
        n_pairs = sum(s.stop - s.start for s in step)
        shapes = [(len(run), max(len(self._example(step, ref)[0]) for ref in run)) for run in runs]
        padded = sum(b * length for b, length in shapes)
        self._running = True
        self._step_cost_left_s = sum(self.cost.run_seconds(b, length) for b, length in shapes)
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        runs_s = await loop.run_in_executor(self._executor, self._execute, step, runs, loop)
        seconds = time.perf_counter() - started
        self.cost.observe_step(seconds, runs_s)
        self.metrics.inference_duration.labels(variant=self.variant).observe(seconds)
        self.metrics.batch_size_pairs.labels(variant=self.variant).observe(n_pairs)
        self.metrics.batch_tokens.labels(variant=self.variant).observe(padded)

    def _plan(self, slice_lengths: Sequence[Sequence[int]]) -> list[list[PairRef]]:
        return plan_runs(slice_lengths, self.limits.max_run_pairs, self.limits.sort_window_pairs)

    @staticmethod
    def _example(step: list[Slice], ref: PairRef) -> Example:
        sl = step[ref[0]]
        return sl.job.examples[sl.start + ref[1]]

    def _execute(self, step: list[Slice], runs: list[list[PairRef]], loop: asyncio.AbstractEventLoop) -> float:
        """In the batcher's thread: run each run, timed, and hand its outcome to the loop; returns the
        seconds spent inside runs."""
        total = 0.0
        for run in runs:
            self._mark_dispatched(step, run)
            started = time.perf_counter()
            outcomes = self._run_isolated(step, run)
            seconds = time.perf_counter() - started
            total += seconds
            timing = (len(run), max(len(self._example(step, ref)[0]) for ref in run), seconds)
            loop.call_soon_threadsafe(self._finish_run, step, outcomes, timing, time.monotonic())
        return total

    @staticmethod
    def _mark_dispatched(step: list[Slice], run: list[PairRef]) -> None:
        """In the batcher's thread: the first run holding a request's pairs is about to start."""
        now = time.monotonic()
        for s in {s for s, _ in run}:
            timeline = step[s].job.timeline
            if timeline is not None and "dispatch" not in timeline.ends:
                timeline.mark("dispatch", now)

    def _finish_run(
        self,
        step: list[Slice],
        outcomes: list[tuple[list[PairRef], RunOutcome]],
        timing: RunTiming,
        ended: float,
    ) -> None:
        """On the loop: a run ended (at ``ended``, monotonic, in the batcher's thread). Its time teaches
        the cost model (failed runs teach nothing)."""
        pairs, length, seconds = timing
        self._step_cost_left_s = max(0.0, self._step_cost_left_s - self.cost.run_seconds(pairs, length))
        if len(outcomes) == 1 and not isinstance(outcomes[0][1], Exception):
            self.cost.observe_run(pairs, length, seconds)
        for refs, outcome in outcomes:
            self._deliver(step, refs, outcome, ended)

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

    def _deliver(self, step: list[Slice], refs: list[PairRef], outcome: RunOutcome, ended: float) -> None:
        """On the loop: scatter a run's probabilities to its jobs, completing those now fully scored."""
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
                if sl.job.timeline is not None:
                    sl.job.timeline.mark("inference", ended)
                sl.job.future.set_result(sl.job.probs)
                if sl.job.admitted is not None:
                    estimate = sl.job.admitted
                    self.cost.error(estimate).observe(time.monotonic() - estimate.made_at, estimate.until_scored_s)

    def _fail(self, slices: Sequence[Slice], error: Exception) -> None:
        for sl in slices:
            if not sl.job.future.done():
                sl.job.future.set_exception(error)

    def _expired(self) -> Overloaded:
        self._shed("expired_in_queue")
        return Overloaded(
            "expired_in_queue",
            "the budget ran out while the request was queued (its compute had not started)",
            self.ahead_s(),
        )

    def _shed(self, reason: ShedReason) -> None:
        self.metrics.shed.labels(variant=self.variant, reason=reason).inc()

    def _set_queued(self, pairs: int, cost_s: float) -> None:
        self._queued_pairs = pairs
        self._queued_cost_s = max(0.0, cost_s) if pairs else 0.0
        self._depth.set(pairs)
