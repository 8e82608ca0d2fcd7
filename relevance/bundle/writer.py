"""Write ``bundle.json`` for a folder of graphs and tokenizer: checksums of every file are taken here."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from relevance.bundle.loader import sha256_file
from relevance.bundle.manifest import MANIFEST_NAME, BundleManifest, FileEntry, GraphEntry


def write_manifest(root: Path, graphs: list[GraphEntry], extra_files: list[str], **fields) -> BundleManifest:
    """Checksum the graphs, the tokenizer and ``extra_files`` under ``root``; validate and write the manifest."""
    tokenizer = fields.get("tokenizer", "tokenizer.json")
    names = sorted({g.path for g in graphs} | {tokenizer} | set(extra_files))
    files = {n: FileEntry(sha256=sha256_file(root / n), bytes=(root / n).stat().st_size) for n in names}
    manifest = BundleManifest(
        created=fields.pop("created", datetime.now(timezone.utc).replace(microsecond=0)),
        graphs=tuple(graphs),
        files=files,
        **fields,
    )
    (root / MANIFEST_NAME).write_text(json.dumps(manifest.model_dump(mode="json"), indent=2) + "\n")
    return manifest


@contextmanager
def staged_bundle(out: Path) -> Iterator[Path]:
    """A temporary sibling folder to assemble a bundle in; moved to ``out`` (replacing it) only when the
    block succeeds, so a failed export never leaves a half-written bundle where a service would load it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it owner-only; a bundle is read by the (non-root) service user
    try:
        yield staging
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
