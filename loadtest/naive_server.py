"""The naive baseline: the same bundle behind FastAPI, one request = one unbatched ORT run, no batcher.

This is what a first server usually looks like (a sync handler in FastAPI's thread pool calling the
model): concurrent requests run concurrently and fight over the cores, nothing is shared or sorted.
Run: ``python -m loadtest.naive_server --bundle models/default --port 8001``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from relevance.bundle import load_bundle
from relevance.model import BundleModel
from service.schemas import RelevanceRequest


def create_naive_app(bundle: Path, intra_op_threads: int = 0) -> FastAPI:
    model = BundleModel.load(load_bundle(bundle), intra_op_threads=intra_op_threads)
    app = FastAPI(title="naive relevance baseline")

    @app.post("/relevance")
    def relevance(body: RelevanceRequest) -> dict:
        probs = model.run(model.encode(body.query, [s.fields() for s in body.services]))
        scores = (probs @ model.gains).tolist()
        return {
            "results": [{"id": s.id, "score": score} for s, score in zip(body.services, scores, strict=True)]
        }

    @app.get("/readyz")
    def readyz() -> dict:
        return {"status": "ready"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--intra-op-threads", type=int, default=0)
    args = parser.parse_args()
    uvicorn.run(
        create_naive_app(args.bundle, args.intra_op_threads),
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
