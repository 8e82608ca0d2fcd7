"""Write ``bundle.json`` for a folder of graphs and tokenizer: checksums of every file are taken here."""

from __future__ import annotations

import json
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
