"""Load a bundle folder and verify it: manifest schema, every listed file present, every checksum."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pydantic import ValidationError

from relevance.bundle.errors import BundleError
from relevance.bundle.manifest import MANIFEST_NAME, BundleManifest, Precision


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: BundleManifest

    @cached_property
    def checksum(self) -> str:
        """Identity of the bundle's weights and tokenizer: a digest over the listed files' digests."""
        joined = "".join(f"{p}:{e.sha256};" for p, e in sorted(self.manifest.files.items()))
        return hashlib.sha256(joined.encode()).hexdigest()[:16]

    def graph_path(self, precision: Precision | None = None) -> Path:
        return self.root / self.manifest.graph(precision).path

    @property
    def tokenizer_path(self) -> Path:
        return self.root / self.manifest.tokenizer


def _format_validation(err: ValidationError) -> str:
    problems = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(manifest)"
        problems.append(f"{where}: {e['msg']}")
    return "; ".join(problems)


def load_bundle(root: str | Path, verify: bool = True) -> Bundle:
    """Read ``bundle.json`` under ``root`` and check it against the files on disk.

    Raises :class:`BundleError` naming the missing file, the bad checksum or the invalid field.
    """
    root = Path(root)
    manifest_path = root / MANIFEST_NAME
    if not root.is_dir():
        raise BundleError(f"bundle folder {root} does not exist")
    if not manifest_path.is_file():
        raise BundleError(f"{manifest_path} is missing: is {root} a bundle written by 'relevance export'?")
    try:
        raw = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as err:
        raise BundleError(f"{manifest_path} is not valid JSON: {err}") from None
    try:
        manifest = BundleManifest.model_validate(raw)
    except ValidationError as err:
        raise BundleError(f"{manifest_path} is invalid: {_format_validation(err)}") from None
    if verify:
        for rel, entry in manifest.files.items():
            path = root / rel
            if not path.is_file():
                raise BundleError(f"bundle {root}: file {rel} listed in {MANIFEST_NAME} is missing")
            actual = sha256_file(path)
            if actual != entry.sha256:
                raise BundleError(
                    f"bundle {root}: checksum mismatch for {rel} "
                    f"(manifest {entry.sha256[:12]}..., file {actual[:12]}...): the file is corrupt or was "
                    "replaced; re-export the bundle"
                )
    return Bundle(root=root, manifest=manifest)
