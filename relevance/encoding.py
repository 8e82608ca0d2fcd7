"""Turn (query, service text[, reasoning]) into BERT inputs, identically for training and serving.

Layout: ``[CLS] query [SEP] service [SEP]`` (token types 0 then 1) and, for the reasoning-augmented
view of CRSD, ``[CLS] query [SEP] service [SEP] reasoning [SEP]`` (reasoning also type 1).

Truncation cuts the *last* segment first (reasoning, then service) and the query only as a last
resort, so the part that decides relevance survives. Only the ``tokenizers`` library is used:
this module is on the torch-free serving path, and training calls the very same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer


class PairEncoder:
    def __init__(self, tokenizer: Tokenizer, max_length: int) -> None:
        if max_length < 4:
            raise ValueError("max_length must leave room for [CLS], [SEP] and some text")
        self.tokenizer = tokenizer
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.max_length = max_length
        self.cls_id = self._special_id("[CLS]")
        self.sep_id = self._special_id("[SEP]")
        self.pad_id = self._special_id("[PAD]")

    @classmethod
    def from_file(cls, path: str | Path, max_length: int) -> "PairEncoder":
        return cls(Tokenizer.from_file(str(path)), max_length)

    def _special_id(self, token: str) -> int:
        idx = self.tokenizer.token_to_id(token)
        if idx is None:
            raise ValueError(f"tokenizer has no {token} token: a BERT WordPiece tokenizer is expected")
        return idx

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Word-piece ids of each text without special tokens (duplicates are encoded once)."""
        unique = list(dict.fromkeys(texts))
        encoded = self.tokenizer.encode_batch(unique, add_special_tokens=False)
        by_text = {t: e.ids for t, e in zip(unique, encoded)}
        return [by_text[t] for t in texts]

    def _fit(self, segments: list[list[int]]) -> list[list[int]]:
        budget = self.max_length - 1 - len(segments)  # [CLS] + one [SEP] per segment
        excess = sum(len(s) for s in segments) - budget
        out = list(segments)
        for i in range(len(out) - 1, -1, -1):  # last segment first, query last
            if excess <= 0:
                break
            cut = min(excess, len(out[i]))
            out[i] = out[i][: len(out[i]) - cut]
            excess -= cut
        return out

    def build(self, segments: list[list[int]]) -> tuple[list[int], list[int]]:
        """Ids and token types for one example from its segments' word-piece ids."""
        segments = self._fit(segments)
        ids = [self.cls_id, *segments[0], self.sep_id]
        types = [0] * len(ids)
        for seg in segments[1:]:
            ids += [*seg, self.sep_id]
            types += [1] * (len(seg) + 1)
        return ids, types

    def encode(
        self,
        queries: Sequence[str],
        services: Sequence[str],
        reasonings: Sequence[str] | None = None,
    ) -> list[tuple[list[int], list[int]]]:
        columns = [self.token_ids(queries), self.token_ids(services)]
        if reasonings is not None:
            columns.append(self.token_ids(reasonings))
        return [self.build(list(segs)) for segs in zip(*columns)]

    def pad(self, examples: Sequence[tuple[list[int], list[int]]]) -> dict[str, np.ndarray]:
        """Pad to the longest example of the batch (not to max_length): padding is wasted compute."""
        width = max(len(ids) for ids, _ in examples)
        n = len(examples)
        input_ids = np.full((n, width), self.pad_id, dtype=np.int64)
        token_type_ids = np.zeros((n, width), dtype=np.int64)
        attention_mask = np.zeros((n, width), dtype=np.int64)
        for row, (ids, types) in enumerate(examples):
            input_ids[row, : len(ids)] = ids
            token_type_ids[row, : len(types)] = types
            attention_mask[row, : len(ids)] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
