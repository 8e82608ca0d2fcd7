"""How long a request will take: a cost model of request shape, for admission control.

The compute of an ORT run depends on its shape: ``pairs x padded length``, plus a fixed cost per
run that does not shrink with the batch (on the 2-core default bundle a run of one 8-token pair
takes 1.2 ms, sixteen of them 7.3 ms; a single seconds-per-pair figure learnt from small runs
therefore over-estimates a large request several times over). So the model has two parts:

* :class:`RunProfile`, the seconds of one run as a function of (pairs, padded length), measured at
  warm-up on a grid of shapes (powers of two up to ``max_run_pairs`` and the bundle's
  ``max_length``) and interpolated in log-log space: exact at the grid points, smooth between them;
* a *slowdown* factor (:class:`Slowdown`) learnt from live runs, the ratio of measured to
  profiled seconds. A noisy neighbour or a long-text burst raises it at once; it falls back as runs
  return to normal and, when no run is observed, decays toward 1 (the warm-up profile) with a
  half-life, so an estimate that refuses work can never stay inflated for lack of admitted work.

:class:`CostModel` combines them with the same run plan the batcher will use
(:func:`service.batcher.plan_runs` cuts length-sorted pairs into runs of ``max_run_pairs``) and
with token lengths guessed from characters before tokenisation (the chars-per-token ratio is learnt
from tokenised requests), so admission never has to tokenise a request it is about to refuse.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


def _grid(top: int, start: int = 1) -> list[int]:
    """Powers of two from ``start`` up to ``top``, with ``top`` itself: the shapes warm-up measures."""
    points = []
    p = start
    while p < top:
        points.append(p)
        p *= 2
    points.append(top)
    return points


def profile_shapes(max_run_pairs: int, max_length: int) -> tuple[list[int], list[int]]:
    """Pairs per run and padded lengths of the warm-up grid (lengths from 8 tokens: shorter is noise)."""
    return _grid(max_run_pairs), _grid(max_length, start=min(8, max_length))


@dataclass(frozen=True)
class RunProfile:
    """Seconds of one ORT run on a grid of (pairs, padded length), interpolated in log-log space."""

    pairs: tuple[int, ...]
    lengths: tuple[int, ...]
    seconds: np.ndarray  # (len(pairs), len(lengths))
    _logs: list[list[float]] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.seconds.shape != (len(self.pairs), len(self.lengths)) or not np.all(self.seconds > 0):
            raise ValueError("a run profile needs one positive time per (pairs, length) grid point")
        # Looked up several times per request on the event loop: plain floats and bisect cost ~1 us a
        # lookup where numpy's per-call overhead cost tens (hundreds of us per lone request).
        object.__setattr__(self, "_logs", np.log(self.seconds).tolist())

    @classmethod
    def measure(
        cls,
        time_run: Callable[[int, int], float],
        pairs: Sequence[int],
        lengths: Sequence[int],
        repeats: int = 3,
    ) -> RunProfile:
        """Time every grid shape ``repeats`` times and keep the median.

        One untimed pass pays each shape's allocation first. The timed passes visit the shapes in a
        shuffled order, because in service a run rarely has the shape of the run before it, and a
        change of shape costs a little (on the tiny test model, a third of a 1-pair run): timing one
        shape over and over would read fast. Live runs correct what the grid still misses
        (:class:`Slowdown`).
        """
        shapes = [(i, j) for i in range(len(pairs)) for j in range(len(lengths))]
        for i, j in shapes:
            time_run(pairs[i], lengths[j])
        samples: dict[tuple[int, int], list[float]] = {shape: [] for shape in shapes}
        order = np.random.default_rng(0)
        for _ in range(repeats):
            for k in order.permutation(len(shapes)):
                i, j = shapes[k]
                samples[(i, j)].append(time_run(pairs[i], lengths[j]))
        table = np.empty((len(pairs), len(lengths)))
        for (i, j), times in samples.items():
            table[i, j] = float(np.median(times))
        return cls(tuple(pairs), tuple(lengths), np.maximum(table, 1e-6))

    @classmethod
    def constant(cls, seconds: float) -> RunProfile:
        """A flat profile (before warm-up, or a backend whose cost does not depend on shape)."""
        return cls((1,), (1,), np.array([[seconds]]))

    def __call__(self, pairs: int, length: int) -> float:
        """Seconds of one run of ``pairs`` pairs padded to ``length`` tokens."""
        fb, fl = self._coord(self.pairs, pairs), self._coord(self.lengths, length)
        ib, il = int(fb), int(fl)
        jb, jl = min(ib + 1, len(self.pairs) - 1), min(il + 1, len(self.lengths) - 1)
        wb, wl = fb - ib, fl - il
        logs = self._logs
        value = (
            (1 - wb) * (1 - wl) * logs[ib][il]
            + wb * (1 - wl) * logs[jb][il]
            + (1 - wb) * wl * logs[ib][jl]
            + wb * wl * logs[jb][jl]
        )
        return math.exp(value)

    @staticmethod
    def _coord(points: Sequence[int], x: float) -> float:
        """Fractional index of ``x`` among ``points`` on a log scale, clamped to the grid."""
        if x <= points[0]:
            return 0.0
        if x >= points[-1]:
            return float(len(points) - 1)
        k = bisect.bisect_right(points, x) - 1
        lo, hi = points[k], points[k + 1]
        return k + math.log(x / lo) / math.log(hi / lo)

    def as_dict(self) -> dict[str, object]:
        return {
            "pairs": list(self.pairs),
            "lengths": list(self.lengths),
            "ms": [[round(float(s) * 1000, 3) for s in row] for row in self.seconds],
        }


class Slowdown:
    """Measured / profiled seconds of recent runs, as a factor on every estimate.

    Kept in log space (a run twice as slow and one twice as fast cancel out). Its target is the
    median of the last ``window`` runs, so one outlier (a shape's first run, a GC pause) moves nothing
    while a slowdown of every run (a noisy neighbour, a long-text burst) moves it within a few runs.
    It rises toward the target fast (``alpha_up``, most of the way at once) so admission tightens
    without delay, falls more gently (``alpha_down``) so one lucky stretch does not reopen the gates,
    and between observations decays toward 0 (factor 1, the profile) with ``half_life_s``: nothing
    can hold it up but measured runs.
    """

    def __init__(
        self,
        alpha_up: float = 0.8,
        alpha_down: float = 0.3,
        half_life_s: float = 2.0,
        window: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.alpha_up = alpha_up
        self.alpha_down = alpha_down
        self.half_life_s = half_life_s
        self.clock = clock
        self._recent: deque[float] = deque(maxlen=window)
        self._log = 0.0
        self._at = clock()

    @property
    def factor(self) -> float:
        return math.exp(self._decayed(self.clock()))

    @property
    def age_s(self) -> float:
        """Seconds since the last observed run."""
        return self.clock() - self._at

    def observe(self, measured_s: float, profiled_s: float) -> None:
        if measured_s <= 0 or profiled_s <= 0:
            return
        now = self.clock()
        if now - self._at > self.half_life_s:
            self._recent.clear()  # runs from before a quiet spell say nothing about now
        self._recent.append(math.log(measured_s / profiled_s))
        current = self._decayed(now)
        target = statistics.median(self._recent)
        alpha = self.alpha_up if target > current else self.alpha_down
        self._log = current + alpha * (target - current)
        self._at = now

    def _decayed(self, now: float) -> float:
        return self._log * 0.5 ** (max(0.0, now - self._at) / self.half_life_s)


class StepOverhead:
    """Seconds a batcher step costs beyond the runs themselves: the hop to the inference thread and
    back to the event loop. Additive and per step, so it belongs to neither the run profile nor the
    multiplicative slowdown; an exponential mean of (step time - the sum of its runs' measured times)."""

    def __init__(self, alpha: float = 0.2) -> None:
        self.alpha = alpha
        self._mean = 0.0

    @property
    def seconds(self) -> float:
        # the mean of signed residuals, floored only here: flooring each one would turn timing
        # noise on large steps into a phantom overhead
        return max(0.0, self._mean)

    def observe(self, measured_s: float, expected_s: float) -> None:
        self._mean += self.alpha * ((measured_s - expected_s) - self._mean)


class EstimateError:
    """How far off admission's estimates turn out: a high quantile of (measured / estimated) time from
    admission until scored, over the last ``window`` requests, as a multiplier on every estimate.

    Under overload admission fills the queue until the next request *just* fits its deadline, so an
    estimate that is right on average would have half of those requests answered late. Scaling by
    the ``quantile`` of the measured error keeps late answers to about ``1 - quantile`` of them,
    whatever the error's cause (gaps between steps while the event loop parses, contention with the
    tokenizer, a plan the estimate simplifies). Never below 1; ``initial`` until ``min_samples``.

    :class:`CostModel` keeps one for requests admitted to an idle batcher and one for the rest: the
    error of a lone request's estimate is the run profile's, small, while a queued one's is mostly
    the queue's, and a margin learnt under overload (up to 3x) applied to a lone request would refuse
    it on an idle server (only admitted requests are measured, so nothing would ever lower it).
    """

    def __init__(
        self, quantile: float = 0.98, window: int = 256, min_samples: int = 20, initial: float = 1.1
    ) -> None:
        self.quantile = quantile
        self.min_samples = min_samples
        self.initial = initial
        self._ratios: deque[float] = deque(maxlen=window)
        self._seen = 0
        self.multiplier = initial

    def observe(self, measured_s: float, estimated_s: float) -> None:
        if estimated_s < 0.02:  # the error of a few-ms estimate is scheduling noise, and it is the long
            return  # estimates (a queue near the deadline) whose error makes answers late
        self._ratios.append(measured_s / estimated_s)
        self._seen += 1
        if len(self._ratios) >= self.min_samples and self._seen % 8 == 0:  # a quantile every 8 is plenty
            q = float(np.quantile(self._ratios, self.quantile))
            self.multiplier = min(3.0, max(1.0, q))


class CharsPerToken:
    """Characters per word-piece of this traffic, learnt from tokenised requests (weighted by size)."""

    def __init__(self, initial: float = 4.0, alpha: float = 0.1) -> None:
        self.value = initial
        self.alpha = alpha

    def observe(self, chars: int, tokens: int) -> None:
        if chars > 0 and tokens > 0:
            self.value += self.alpha * (chars / tokens - self.value)


@dataclass(frozen=True)
class Estimate:
    """A request's estimated seconds: its own compute and the work it waits behind, both slowed."""

    own_s: float
    ahead_s: float
    wait_s: float  # batching window and event-loop lag before its first run
    idle: bool = False  # nothing was queued, reserved or running: its error margin is the idle one
    profiled_s: float = 0.0  # its runs as profiled: what admission reserves in the queue until submission
    pairs: int = 0
    made_at: float = dataclasses.field(default_factory=time.monotonic)

    @property
    def until_scored_s(self) -> float:
        return self.wait_s + self.ahead_s + self.own_s

    @property
    def until_started_s(self) -> float:
        return self.wait_s + self.ahead_s


class CostModel:
    """Seconds of a request's runs from its shape: the run profile, the batcher's plan, the slowdown."""

    SPECIAL_TOKENS = 3  # [CLS] query [SEP] service [SEP]

    def __init__(
        self, max_run_pairs: int, max_length: int, profile: RunProfile | None = None,
        slowdown: Slowdown | None = None,
    ) -> None:
        self.max_run_pairs = max_run_pairs
        self.max_length = max_length
        self.profile = profile or RunProfile.constant(0.002)
        self.slowdown = slowdown or Slowdown()
        self.overhead = StepOverhead()
        self.errors = {"idle": EstimateError(), "busy": EstimateError()}  # by the batcher's state at admission
        self.chars_per_token = CharsPerToken()

    # --- shapes -----------------------------------------------------------------------------------

    def guess_lengths(self, query: str, texts: Sequence[str]) -> list[int]:
        """Token lengths of (query, text) pairs guessed from characters, capped at ``max_length``."""
        cpt = self.chars_per_token.value
        q = len(query)
        return [
            min(self.max_length, self.SPECIAL_TOKENS + math.ceil((q + len(t)) / cpt)) for t in texts
        ]

    def observe_tokens(self, query: str, texts: Sequence[str], lengths: Sequence[int]) -> None:
        """Learn chars per token from a tokenised request (only pairs that the length cap did not cut)."""
        chars = tokens = 0
        for text, length in zip(texts, lengths, strict=True):
            if length < self.max_length:
                chars += len(query) + len(text)
                tokens += length - self.SPECIAL_TOKENS
        self.chars_per_token.observe(chars, tokens)

    # --- compute ----------------------------------------------------------------------------------

    def runs_seconds(self, lengths: Sequence[int], pooled: bool = False) -> float:
        """Profiled seconds of the runs a request of these pair lengths is cut into, sorted alone.

        ``pooled``: the request joins others in the queue, so a last partial run is shared with its
        neighbours and costs its share of a full run, not a whole run's fixed cost.
        """
        ordered = sorted(lengths)
        total = 0.0
        r = self.max_run_pairs
        for start in range(0, len(ordered), r):
            run = ordered[start : start + r]
            if pooled and len(run) < r:
                total += self.profile(r, run[-1]) * len(run) / r
            else:
                total += self.profile(len(run), run[-1])
        return total

    def run_seconds(self, pairs: int, length: int) -> float:
        return self.profile(pairs, length)

    def observe_run(self, pairs: int, length: int, seconds: float) -> None:
        """A measured run: how much slower (or faster) than its profile it was."""
        self.slowdown.observe(seconds, self.profile(pairs, length))

    def observe_step(self, seconds: float, runs_s: float) -> None:
        """A measured step (thread hops included) against the measured seconds of its runs."""
        self.overhead.observe(seconds, runs_s)

    def request_seconds(self, lengths: Sequence[int], pooled: bool = False) -> float:
        """Estimated compute of a request of these pair lengths (see :meth:`slowed`)."""
        return self.slowed(self.runs_seconds(lengths, pooled), pooled)

    def slowed(self, profiled_s: float, pooled: bool = False) -> float:
        """Profiled run seconds as they will take now: times the slowdown, plus a step's overhead (a
        pooled request shares a step, and its overhead, with its neighbours)."""
        return profiled_s * self.factor + (0.0 if pooled else self.overhead.seconds)

    @property
    def factor(self) -> float:
        return self.slowdown.factor

    def error(self, estimate: Estimate) -> EstimateError:
        """The error margin that applies to (and learns from) this estimate."""
        return self.errors["idle" if estimate.idle else "busy"]

    def lone_estimates_ms(self, length: int, sizes: Sequence[int] = (1, 8, 32, 64, 128, 256)) -> dict[int, float]:
        """Estimated compute of a lone request of each size whose pairs are all ``length`` tokens."""
        return {n: round(self.request_seconds([length] * n) * 1000, 2) for n in sizes}
