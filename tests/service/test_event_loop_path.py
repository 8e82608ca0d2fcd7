"""Every handler and dependency of the service runs on the event loop: none is a plain ``def``.

FastAPI runs a plain ``def`` endpoint or dependency in its thread pool; on cores that ONNX Runtime keeps
busy each such hop waits to be scheduled, twice per request, and refusals and probes wait with it.
"""

from __future__ import annotations

import inspect

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from service.routes import router


def _calls(dependant: Dependant):
    if dependant.call is not None:
        yield dependant.call
    for sub in dependant.dependencies:
        yield from _calls(sub)


def test_no_route_or_dependency_hops_to_the_thread_pool():
    routes = [r for r in router.routes if isinstance(r, APIRoute)]
    assert {"/relevance", "/healthz", "/metrics", "/admission"} <= {r.path for r in routes}
    sync = sorted({f"{r.path}: {call.__qualname__}" for r in routes for call in _calls(r.dependant)
                   if not inspect.iscoroutinefunction(call)})
    assert sync == []
