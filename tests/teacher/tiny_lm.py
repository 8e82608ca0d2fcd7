"""A tiny, randomly initialised causal LM with a byte-level BPE tokenizer and a ChatML chat template,
built in the tests (no download, no ../shared): the same kind of folder as SmolLM2, 4 orders of
magnitude smaller, so every teacher step runs end to end in seconds."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures import catalog_records

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _corpus() -> list[str]:
    from relevance.data import Pair
    from teacher.chains.attributes import program_chain
    from teacher.chains.prompts import SYSTEM, PromptTemplate

    texts = [SYSTEM] * 20
    template = PromptTemplate(text_fields=("title", "brand", "description"))
    for r in catalog_records(300, seed=1):
        pair = Pair(id=r["id"], query=r["query"], service=r["service"], label=r["label"])
        texts.append(template.messages(pair)[1]["content"])
        texts.append(program_chain(pair, pair.label)[0])
    return texts


def make_tiny_causal_lm(folder: Path, seed: int = 0, hidden: int = 32, vocab_size: int = 700) -> Path:
    """Save a 2-layer Llama (hidden 32) and its tokenizer as a plain Hugging Face folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(_corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        bos_token=None, unk_token=None)
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True,
        # large enough that frozen embeddings still allow peaked next-token distributions under LoRA
        initializer_range=0.25,
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(folder, safe_serialization=True)
    return folder
