"""The serving path never imports torch: not on import, not while loading and scoring a bundle."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import asyncio, sys
    import httpx
    import service, service.server
    from service.app import create_app
    from service.settings import Settings

    async def main():
        app = create_app(Settings(bundle=sys.argv[1]))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
                body = {"query": "drill", "services": [{"id": "1", "title": "dewalt drill"}]}
                reply = await client.post("/relevance", json=body)
                assert reply.status_code == 200, reply.text

    asyncio.run(main())
    leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "transformers")))
    print("LEAKED", leaked)
    sys.exit(1 if leaked else 0)
""")


def test_serving_leaves_torch_unimported(tiny_bundle: Path):
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_bundle)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "LEAKED []" in done.stdout
