"""The teacher stage: a domain-adapted reasoning LLM that labels (query, service) pairs.

Steps (each a config dataclass paired with a function that runs it, TRL style):

* :mod:`~training.teacher.dapt`  continued causal-LM pre-training on query and service text;
* :mod:`~training.teacher.sft`   reasoning SFT (TRL ``SFTTrainer`` + LoRA) on seed chains;
* :mod:`~training.teacher.reward` the multi-dimensional reward, one function per dimension;
* :mod:`~training.teacher.dpo`   sampled outputs scored by the reward -> chosen/rejected -> TRL ``DPOTrainer``;
* :mod:`~training.teacher.annotate` batched, resumable, shardable labelling of a pool;
* :mod:`~training.teacher.evaluate` accuracy, macro-F1, per-class F1, parse failures, reward per dimension.

A trained teacher is a base causal LM plus LoRA adapters merged in order, described by a
``teacher.json`` (see :mod:`~training.teacher.model`). Importing this package (or its ``cli``)
does not import torch; the heavy modules import it themselves.
"""
