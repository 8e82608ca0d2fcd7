"""Test doubles of the teacher suite: a scripted backend and an in-process fake OpenAI-compatible server."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from relevance.data import Pair
from teacher.backends.base import Completion, PromptedBackend
from teacher.chains.prompts import PromptTemplate


def good_chain(label: str) -> str:
    return (f"Wants: item\nType: same\nBrand: not asked\nSpecs: not asked\nSize/colour: not asked\n"
            f"Accessory: no\nLabel: {label}")


class ScriptedBackend(PromptedBackend):
    """Answers from the pair id: ``id % 7 == 0`` is always malformed, ``id % 7 == 1`` is malformed
    until it is sampled (a retry), everything else is a good chain labelled by the id."""

    name, version = "scripted", "1"

    def __init__(self, delay_s: float = 0.0, fail_after_calls: int | None = None):
        self.template = PromptTemplate()
        self.delay_s = delay_s
        self.fail_after_calls = fail_after_calls
        self.calls: list[tuple[list[str], bool]] = []

    def complete(self, pairs: Sequence[Pair], *, sample: bool = False, n: int = 1, hints=None,
                 want_probs: bool = True) -> list[list[Completion]]:
        if self.fail_after_calls is not None and len(self.calls) >= self.fail_after_calls:
            raise KeyboardInterrupt("simulated kill")
        self.calls.append(([p.id for p in pairs], sample))
        time.sleep(self.delay_s)
        out = []
        for p in pairs:
            k = int(p.id) % 7
            if k == 0 or (k == 1 and not sample):
                text = "Wants: item\nType: same\nBrand: not"  # truncated
            else:
                text = good_chain(("irrelevant", "partial", "exact")[int(p.id) % 3])
            out.append([Completion(text, {"irrelevant": 0.2, "partial": 0.3, "exact": 0.5})] * n)
        return out


def run_slow_annotation(data: str, out: str) -> None:
    """Entry point of the kill test's subprocess: annotate slowly with the scripted backend."""
    from relevance.data import load_pairs
    from teacher.steps.annotate import annotate_pairs, shard_pairs

    pairs = shard_pairs(load_pairs(data, "test"))
    annotate_pairs(ScriptedBackend(delay_s=0.15), pairs, out, retries=1, batch_size=2, progress=False)


def _logprobs_for(text: str, label: str) -> dict:
    head, _, _ = text.rpartition("Label:")
    alternatives = {"exact": -2.0, "partial": -2.0, "irrelevant": -2.0} | {label: -0.2}
    return {"content": [
        {"token": head, "logprob": -0.1, "top_logprobs": []},
        {"token": "Label:", "logprob": -0.01, "top_logprobs": []},
        {"token": " " + label, "logprob": alternatives[label],
         "top_logprobs": [{"token": " " + k, "logprob": v} for k, v in alternatives.items()]},
    ]}


class FakeOpenAI:
    """``POST /v1/chat/completions`` on 127.0.0.1, answering from a plan of actions (one per request, in
    arrival order; then ``"ok"``): ``"ok"``, ``("status", code)``, ``("status", code, retry_after)``,
    ``("sleep", seconds)`` (then answers ok), ``"not-json"``. The label of an ok answer is ``exact``
    when the query mentions a drill, else ``irrelevant``."""

    def __init__(self, plan: Sequence = ()):
        self.plan = deque(plan)
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.start_times: list[float] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.requests.append(body)
                    fake.start_times.append(time.monotonic())
                    action = fake.plan.popleft() if fake.plan else "ok"
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    self._answer(body, action)
                finally:
                    with fake.lock:
                        fake.in_flight -= 1

            def _answer(self, body, action):
                if isinstance(action, tuple) and action[0] == "status":
                    self.send_response(action[1])
                    if len(action) > 2:
                        self.send_header("Retry-After", str(action[2]))
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                    return
                if isinstance(action, tuple) and action[0] == "sleep":
                    time.sleep(action[1])
                if self.path != "/v1/chat/completions":
                    self.send_response(404)
                    self.end_headers()
                    return
                user = body["messages"][-1]["content"]
                label = "exact" if "drill" in user else "irrelevant"
                text = good_chain(label)
                message = {"role": "assistant", "content": text}
                choice = {"index": 0, "message": message, "finish_reason": "stop"}
                if body.get("logprobs"):
                    choice["logprobs"] = _logprobs_for(text, label)
                data = b"not json" if action == "not-json" else json.dumps({"choices": [choice]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAI":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
