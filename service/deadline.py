"""What a request's time limit bounds: the caller's deadline or the default budget.

Two budgets, as in Triton's queue policy (whose timeout covers the time a request waits):

* **caller** (``X-Deadline-Ms``): the deadline is the caller's. Work that cannot be answered by then
  is refused at once (503), queued work that can no longer finish in time is dropped before compute,
  and admitted work is answered by the deadline.
* **default** (no header): ``default_deadline_ms`` bounds how long a request may *wait* behind others
  before its compute starts; its own compute is not bounded, so a lone request of any size up to
  ``max_services`` is answered on an idle server, while overload still sheds fast.

The response's ``budget`` field says which one applied. Mirrored (shadow) work has a bound of its own
and is never refused by estimate: it is dropped when the bound passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

BudgetSource = Literal["header", "default", "mirror"]


@dataclass(frozen=True)
class Budget:
    source: BudgetSource
    ms: float
    started: float  # time.monotonic() when the request arrived

    @classmethod
    def for_request(
        cls, header_ms: float | None, default_ms: float, max_ms: float, started: float
    ) -> Budget:
        if header_ms is None:
            return cls("default", min(default_ms, max_ms), started)
        return cls("header", min(header_ms, max_ms), started)

    @property
    def end(self) -> float:
        return self.started + self.ms / 1000

    @property
    def bounds_compute(self) -> bool:
        """Whether the answer itself is due by ``end`` (caller deadline) or only the start of compute."""
        return self.source != "default"

    @property
    def finish_by(self) -> float:
        """When the last pair must be scored (no bound for the default budget)."""
        return self.end if self.bounds_compute else math.inf

    @property
    def start_by(self) -> float:
        """When compute must have started, at the latest."""
        return self.end

    def describe(self) -> dict[str, object]:
        return {
            "source": self.source,
            "ms": self.ms,
            "bounds": "response" if self.bounds_compute else "queue_wait",
        }
