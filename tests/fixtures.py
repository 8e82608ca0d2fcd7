"""Small, self-made test data and models: the tests never read ../shared or download anything.

* :func:`write_catalog_jsonl` writes a synthetic relevance set in the generic JSONL format whose
  labels follow a rule a tiny model can pick up (same product type = exact, same department =
  partial, otherwise irrelevant), with several service fields (title, brand, description).
* :func:`make_tiny_bert` saves a randomly initialised 2-layer BERT and a WordPiece tokenizer
  covering that vocabulary, as a plain Hugging Face folder.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

DEPARTMENTS = {
    "tools": ["drill", "hammer", "saw", "wrench", "screwdriver"],
    "paint": ["primer", "stain", "brush", "roller", "sealer"],
    "garden": ["hose", "shovel", "mower", "rake", "planter"],
    "plumbing": ["faucet", "valve", "pipe", "toilet", "sink"],
}
BRANDS = ["behr", "dewalt", "delta", "ryobi", "moen", "kohler"]
ADJECTIVES = ["cordless", "white", "steel", "heavy", "duty", "outdoor", "black", "brass", "inch", "gallon"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def vocabulary() -> list[str]:
    words = [w for items in DEPARTMENTS.values() for w in items] + list(DEPARTMENTS)
    extra = ["brand", "description", ":", ";", "for", "the", "with", "and", "kit", "set", "pack"]
    return SPECIAL + sorted(set(words + BRANDS + ADJECTIVES + extra)) + [str(d) for d in range(10)]


def _label(query_item: str, item: str) -> str:
    if query_item == item:
        return "exact"
    same_dept = any(query_item in items and item in items for items in DEPARTMENTS.values())
    return "partial" if same_dept else "irrelevant"


def catalog_records(n: int, seed: int = 0, split_weights=(("train", 0.6), ("dev", 0.2), ("test", 0.2))) -> list[dict]:
    rng = random.Random(seed)
    items = [w for ws in DEPARTMENTS.values() for w in ws]
    splits, weights = zip(*split_weights)
    records = []
    for i in range(n):
        q_item = rng.choice(items)
        # bias towards related products so all three classes appear
        item = q_item if rng.random() < 0.4 else rng.choice(items)
        brand = rng.choice(BRANDS)
        query = " ".join(rng.sample(ADJECTIVES, rng.randint(0, 2)) + [q_item])
        title = " ".join([brand] + rng.sample(ADJECTIVES, rng.randint(1, 3)) + [item, rng.choice(["kit", "set", "pack", ""])])
        label = _label(q_item, item)
        records.append({
            "id": str(i),
            "query": query.strip(),
            "service": {"id": f"p{i}", "title": " ".join(title.split()), "brand": brand,
                        "description": f"{item} for the {rng.choice(list(DEPARTMENTS))}"},
            "label": label,
            "rating": {"irrelevant": 1.0, "partial": 2.0, "exact": 3.0}[label] - rng.choice([0, 0.33]) * (label != "irrelevant"),
            "split": rng.choices(splits, weights)[0],
        })
    return records


def write_catalog_jsonl(path: Path, n: int = 240, seed: int = 0) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in catalog_records(n, seed)))
    return path


def make_tiny_bert(folder: Path, seed: int = 0, hidden: int = 32) -> Path:
    """A 2-layer, hidden-32 BERT with a fresh 3-way head and its tokenizer, saved as an HF folder."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * hidden, max_position_embeddings=128, num_labels=3,
    )
    BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    return folder
