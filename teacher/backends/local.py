"""The local backend: generate with a Hugging Face causal LM in this process.

Label probabilities come from the logits of the label tokens at the position right after
``Label:`` in the generated chain: ``p(c) = softmax_c(logit[first token of " <c>"])`` over the
three labels. Under greedy decoding their argmax is the generated label.

With ``GenerationSettings.constrain_label`` (the default) decoding is grammar-constrained on the
one line the parser is strict about (:class:`LabelConstraint`): right after ``Label:`` only the
three label words may follow, and after the label word only the end of the output. The label
probabilities are read from the unconstrained logits, so they are the model's own.

A calibrated teacher (``teacher calibrate``) carries per-label logit offsets ``b`` in its spec:
``p(c) = softmax_c(logit_c + b_c)``, added at the label step during decoding as well, so the
generated label is the argmax of the calibrated probabilities and the chain stays consistent
with it.
"""

from __future__ import annotations

from collections.abc import Sequence

from relevance.data import Pair
from relevance.labels import LABELS
from teacher.backends.base import Completion, PromptedBackend, ends_with_label_prefix, softmax
from teacher.chains.prompts import PromptTemplate, parse_output
from teacher.settings import GenerationSettings


class LabelTokens:
    """First token ids of the three label words, with and without a leading space."""

    def __init__(self, tokenizer):
        self.variants: list[dict[str, int]] = []
        for prefix in (" ", ""):
            ids = {lbl: tokenizer.encode(prefix + lbl, add_special_tokens=False)[0] for lbl in LABELS}
            if len(set(ids.values())) == len(LABELS):
                self.variants.append(ids)
        if not self.variants:
            raise ValueError("the tokenizer starts the three label words with the same token; "
                             "label probabilities cannot be read from one position")
        self.lookup = {tid: v for v in self.variants for tid in v.values()}


class LabelConstraint:
    """A ``transformers`` logits processor: after ``Label:`` allow only a label token, then only EOS.

    Small teachers learn the chain's lines before its last one and then write ``Label: no`` or
    ``Label: not asked`` (the smoke SFT's main parse failure); serving grammars (vLLM, llama.cpp)
    solve this by masking, and so does this. It only fires on the exact token sequence of
    ``Label:`` as the tokenizer writes it at a line start; if that cannot be isolated it stays off.
    """

    def __init__(self, tokenizer, labels: "LabelTokens", eos_ids: list[int], prompt_length: int,
                 label_bias: dict[str, float] | None = None):
        newline = tokenizer.encode("\n", add_special_tokens=False)
        line = tokenizer.encode("\nLabel:", add_special_tokens=False)
        self.prefix = line[len(newline):] if line[:len(newline)] == newline and len(line) > len(newline) else []
        self.label_ids = sorted(labels.variants[0].values())
        bias = label_bias or {}
        by_id = {tid: bias.get(lbl, 0.0) for lbl, tid in labels.variants[0].items()}
        self.bias = [by_id[t] for t in self.label_ids]
        self.eos_ids, self.prompt_length = eos_ids, prompt_length

    def _allowed(self, ids: list[int]) -> list[int] | None:
        """What may follow the generated ``ids``: the label tokens, EOS, or anything (None)."""
        k = len(self.prefix)
        if ids[-k:] == self.prefix:
            return self.label_ids
        if len(ids) > k and ids[-k - 1:-1] == self.prefix and ids[-1] in self.label_ids:
            return self.eos_ids
        return None

    def __call__(self, input_ids, scores):
        k = len(self.prefix)
        if not k or not self.eos_ids:
            return scores
        start = max(self.prompt_length, input_ids.shape[1] - k - 1)  # only the tail can match
        masks = [(row, allowed) for row, ids in enumerate(input_ids[:, start:].tolist())
                 if (allowed := self._allowed(ids)) is not None]
        if not masks:
            return scores
        # never in place: generate() keeps this very tensor as the step's raw logits (output_logits),
        # which the label probabilities are read from
        scores = scores.clone()
        for row, allowed in masks:
            keep = scores[row, allowed].clone()
            if allowed is self.label_ids:
                keep += keep.new_tensor(self.bias)
            scores[row] = float("-inf")
            scores[row, allowed] = keep
        return scores


class LocalBackend(PromptedBackend):
    """Generate with a Hugging Face causal LM (left padding, batches sorted by prompt length)."""

    def __init__(self, model, tokenizer, name: str, version: str, template: PromptTemplate | None = None,
                 settings: GenerationSettings | None = None, label_bias: dict[str, float] | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.label_bias = {lbl: float((label_bias or {}).get(lbl, 0.0)) for lbl in LABELS}
        self.name, self.version = name, version
        self.template = template or PromptTemplate()
        self.settings = settings or GenerationSettings()
        self.labels = LabelTokens(tokenizer)
        eos = {tokenizer.eos_token_id} | set(_as_list(getattr(model.generation_config, "eos_token_id", None)))
        self.eos_ids = sorted(i for i in eos if i is not None)

    @classmethod
    def from_teacher(cls, path: str, template: PromptTemplate | None = None,
                     settings: GenerationSettings | None = None, dtype: str = "float32", threads: int = 0):
        from teacher.model import load_teacher

        model, tokenizer, spec = load_teacher(path, dtype=dtype, threads=threads)
        return cls(model, tokenizer, spec.name, spec.version, template, settings, spec.label_bias)

    def prompts(self, pairs: Sequence[Pair], hints: Sequence[str | None] | None = None) -> list[str]:
        hints = hints or [None] * len(pairs)
        return [self.template.render(self.tokenizer, p, h) for p, h in zip(pairs, hints)]

    def complete(self, pairs: Sequence[Pair], *, sample: bool = False, n: int = 1,
                 hints: Sequence[str | None] | None = None, want_probs: bool = True) -> list[list[Completion]]:
        prompts = self.prompts(pairs, hints)
        lengths = [len(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
        out: list[list[Completion]] = [[] for _ in prompts]
        bs = self.settings.batch_size
        from tqdm.auto import tqdm

        # one bar for multi-batch calls (bootstrap, reward sampling); annotation calls per batch and has its own
        with tqdm(total=len(order), unit="pair", desc="generate", disable=len(order) <= bs, mininterval=5) as bar:
            for start in range(0, len(order), bs):
                idx = order[start:start + bs]
                for i, completions in zip(idx, self._generate([prompts[i] for i in idx], sample, n, want_probs)):
                    out[i] = completions
                bar.update(len(idx))
        return out

    def _encode(self, prompts: list[str], n: int) -> tuple[dict, object | None]:
        """Token ids and attention mask of a batch, and the cached keys/values of the prefix all its
        prompts share (or None).

        Few-shot prompts repeat a long prefix (system text and worked examples, ~500 tokens) before each
        pair; computing it once and reusing its cache cuts the prefill, which dominates generation on a
        CPU. The batch is laid out ``[shared prefix | left padding | own suffix]``: the mask hides the
        padding and positions follow the mask, so each row sees exactly its own prompt.
        """
        import torch

        tok = self.tokenizer
        ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
        shared = _common_prefix(ids)
        # keep one token of each suffix: generate needs a token to continue from after the cache
        shared = min(shared, min(len(i) for i in ids) - 1)
        if not self.settings.prefix_cache or n != 1 or shared < MIN_SHARED_PREFIX:
            enc = tok(prompts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False,
                      return_token_type_ids=False)
            return dict(enc), None
        width = max(len(i) for i in ids) - shared
        pad = tok.pad_token_id
        rows = [i[:shared] + [pad] * (width - (len(i) - shared)) + i[shared:] for i in ids]
        mask = [[1] * shared + [0] * (width - (len(i) - shared)) + [1] * (len(i) - shared) for i in ids]
        cache = self._prefix_cache(tuple(ids[0][:shared]))
        cache.batch_repeat_interleave(len(prompts))
        return {"input_ids": torch.tensor(rows), "attention_mask": torch.tensor(mask)}, cache

    def _prefix_cache(self, prefix: tuple[int, ...]):
        """A fresh copy of the prefix's key/value cache (computed on first use, then kept)."""
        import copy

        import torch

        if getattr(self, "_cached_prefix", None) != prefix:
            device = next(self.model.parameters()).device
            with torch.no_grad():
                out = self.model(input_ids=torch.tensor([prefix], device=device), use_cache=True)
            self._cached_prefix, self._cached_kv = prefix, out.past_key_values
        return copy.deepcopy(self._cached_kv)

    def _generate(self, prompts: list[str], sample: bool, n: int, want_probs: bool) -> list[list[Completion]]:
        import torch

        tok = self.tokenizer
        enc, cache = self._encode(prompts, n)
        device = next(self.model.parameters()).device
        kwargs = dict(max_new_tokens=self.settings.max_new_tokens, num_return_sequences=n, do_sample=sample,
                      pad_token_id=tok.pad_token_id, eos_token_id=self.eos_ids, return_dict_in_generate=True,
                      output_logits=want_probs)
        if cache is not None:
            kwargs["past_key_values"] = cache
        if self.settings.constrain_label:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList(
                [LabelConstraint(tok, self.labels, self.eos_ids, enc["input_ids"].shape[1], self.label_bias)])
        kwargs |= dict(temperature=self.settings.temperature, top_p=self.settings.top_p) if sample else \
            dict(temperature=None, top_p=None, top_k=None)
        with torch.no_grad():
            res = self.model.generate(**{k: v.to(device) for k, v in enc.items()}, **kwargs)
        gen = res.sequences[:, enc["input_ids"].shape[1]:].tolist()
        completions: list[Completion] = []
        fallback: list[tuple[int, str]] = []
        for row, ids in enumerate(gen):
            ids = _until_eos(ids, self.eos_ids)
            text = tok.decode(ids, skip_special_tokens=True)
            probs = None
            if want_probs:
                step = self._label_step(ids)
                if step is not None:
                    variant = self.labels.lookup[ids[step]]
                    logits = res.logits[step][row].float()
                    probs = self.label_probs(logits, variant)
                else:
                    parsed = parse_output(text)
                    if parsed.ok and parsed.label_end is not None:
                        fallback.append((row, prompts[row // n] + text[:parsed.label_end]))
            completions.append(Completion(text, probs))
        if fallback:
            for (row, _), probs in zip(fallback, self.label_probs_after([p for _, p in fallback])):
                completions[row].probs = probs
        return [completions[i * n:(i + 1) * n] for i in range(len(prompts))]

    def _label_step(self, ids: list[int]) -> int | None:
        """The last step whose token starts a label word right after ``Label:``."""
        for step in range(len(ids) - 1, -1, -1):
            if ids[step] in self.labels.lookup:
                prefix = self.tokenizer.decode(ids[:step], skip_special_tokens=True)
                if ends_with_label_prefix(prefix):
                    return step
        return None

    def label_probs_after(self, prefixes: list[str]) -> list[dict[str, float]]:
        """Label probabilities of the next token after each ``prefix`` (which ends with ``Label:``)."""
        import torch

        enc = self.tokenizer(prefixes, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False,
                             return_token_type_ids=False)
        device = next(self.model.parameters()).device
        with torch.no_grad():
            logits = self.model(**{k: v.to(device) for k, v in enc.items()}).logits[:, -1].float()
        return [self.label_probs(row, self.labels.variants[0]) for row in logits]

    def label_probs(self, logits, token_ids: dict[str, int]) -> dict[str, float]:
        """``softmax(logit + bias)`` over the label words' first tokens (bias: the teacher's calibration)."""
        return softmax({lbl: float(logits[t]) + self.label_bias[lbl] for lbl, t in token_ids.items()})


MIN_SHARED_PREFIX = 32  # tokens: below this, computing and copying a prefix cache saves nothing


def _common_prefix(rows: list[list[int]]) -> int:
    """Length of the longest token prefix all ``rows`` share."""
    first, n = rows[0], min(len(r) for r in rows)
    for k in range(n):
        if any(r[k] != first[k] for r in rows[1:]):
            return k
    return n


def _as_list(x) -> list:
    return [] if x is None else list(x) if isinstance(x, (list, tuple)) else [x]


def _until_eos(ids: list[int], eos_ids: list[int]) -> list[int]:
    for i, t in enumerate(ids):
        if t in eos_ids:
            return ids[:i]
    return ids
