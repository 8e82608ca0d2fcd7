"""``relevance eval`` needs only the serving install: it must run with torch and transformers unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_eval_runs_without_torch(tiny_bundle, catalog_jsonl):
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None          # any 'import torch' now raises ImportError
        sys.modules["transformers"] = None
        from typer.testing import CliRunner
        from relevance.cli import app
        result = CliRunner().invoke(app, ["eval", {str(tiny_bundle)!r}, "--data", {str(catalog_jsonl)!r},
                                          "--split", "test"])
        print(result.output)
        sys.exit(result.exit_code)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "macro-F1" in proc.stdout
