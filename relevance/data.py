"""Relevance data: one record type and loaders for the formats we read.

Generic JSONL (one object per line; the format for any team's own data)::

    {"id": "42",                                   # optional; defaults to the line number
     "query": "angle bracket",
     "service": {"id": "100001", "title": "Simpson Strong-Tie 12-Gauge Angle",
                 "brand": "Simpson", "description": "..."},   # any extra scalar fields
     "label": "exact",                             # optional: irrelevant | partial | exact
     "rating": 3.0,                                # optional: mean human rating on 1..3
     "split": "train",                             # optional: lets --split filter the file
     "teacher": {"label": "exact", "probs": {...}, "reasoning": "..."}}   # optional

Also read directly: the Home Depot folder (``pairs.csv`` + ``splits.csv``) and the ESCI sample CSV.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from relevance.bundle.manifest import field_text
from relevance.labels import LABELS, label_from_rating

DATA_ENV = "RELEVANCE_DATA"
# Where the project keeps the Home Depot benchmark (beside the checkout); every command's --data
# default. Point RELEVANCE_DATA at another folder or a .jsonl file to change it for all of them.
DEFAULT_DATA_PATH = "../shared/data/homedepot"


def default_data() -> str:
    """The data every command reads unless told otherwise: ``$RELEVANCE_DATA``, else the Home Depot folder."""
    return os.environ.get(DATA_ENV) or DEFAULT_DATA_PATH


ESCI_LABELS = {"exact": "exact", "substitute": "partial", "complement": "partial", "irrelevant": "irrelevant"}


@dataclass
class Pair:
    id: str
    query: str
    service: dict[str, str]
    label: str | None = None
    rating: float | None = None
    split: str | None = None
    teacher: dict | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.query or not self.query.strip():
            raise ValueError(f"pair {self.id}: empty query")
        if not self.service.get("title"):
            raise ValueError(f"pair {self.id}: service needs a non-empty 'title'")
        if self.label is None and self.rating is not None:
            self.label = label_from_rating(self.rating)
        if self.label is not None and self.label not in LABELS:
            raise ValueError(f"pair {self.id}: unknown label {self.label!r} (expected one of {LABELS})")

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _homedepot(root: Path, splits: set[str] | None) -> Iterator[Pair]:
    split_of: dict[str, str] = {}
    with open(root / "splits.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            split_of[row["id"]] = row["split"]
    with open(root / "pairs.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            split = split_of.get(row["id"])
            if splits is not None and split not in splits:
                continue
            yield Pair(
                id=row["id"],
                query=row["search_term"],
                service={"id": row["product_uid"], "title": row["product_title"]},
                rating=float(row["relevance"]),
                split=split,
            )


def _esci(path: Path, splits: set[str] | None) -> Iterator[Pair]:
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            yield Pair(
                id=row["example_id"],
                query=row["query"],
                service={
                    "id": row["product_id"],
                    "title": row["product_title"],
                    "brand": row.get("product_brand") or "",
                    "color": row.get("product_color") or "",
                    "bullets": row.get("product_bullet_point") or "",
                    "description": row.get("product_description") or "",
                },
                label=ESCI_LABELS[row["esci_label"].strip().lower()],
            )


def _jsonl(path: Path, splits: set[str] | None) -> Iterator[Pair]:
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{n}: not valid JSON ({err.msg})") from None
            if splits is not None and obj.get("split") not in splits:
                continue
            service = {k: field_text(v) for k, v in (obj.get("service") or {}).items() if v is not None}
            try:
                yield Pair(
                    id=str(obj.get("id", n)),
                    query=obj.get("query", ""),
                    service=service,
                    label=obj.get("label"),
                    rating=obj.get("rating"),
                    split=obj.get("split"),
                    teacher=obj.get("teacher"),
                )
            except ValueError as err:
                raise ValueError(f"{path}:{n}: {err}") from None


def load_pairs(source: str | Path, split: str | Iterable[str] | None = None, limit: int | None = None) -> list[Pair]:
    """Load pairs from a Home Depot folder, an ESCI CSV or a JSONL file, keeping only ``split``."""
    source = Path(source)
    splits = {split} if isinstance(split, str) else (set(split) if split is not None else None)
    if source.is_dir() and (source / "pairs.csv").is_file():
        reader = _homedepot(source, splits)
    elif source.is_dir() and (source / "homedepot" / "pairs.csv").is_file():
        reader = _homedepot(source / "homedepot", splits)
    elif source.suffix == ".jsonl":
        reader = _jsonl(source, splits)
    elif source.suffix == ".csv" and source.is_file():
        reader = _esci(source, splits)
    else:
        raise FileNotFoundError(
            f"no data at {source}: give the Home Depot folder (with pairs.csv and splits.csv), "
            "a .jsonl file in the generic format, or the ESCI sample .csv"
        )
    pairs = []
    for pair in reader:
        pairs.append(pair)
        if limit is not None and len(pairs) >= limit:
            break
    if not pairs:
        raise ValueError(f"{source}: no pairs for split {split!r}")
    return pairs


def write_jsonl(pairs: Iterable[Pair], path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for pair in pairs:
            fh.write(json.dumps(pair.to_json(), ensure_ascii=False) + "\n")
