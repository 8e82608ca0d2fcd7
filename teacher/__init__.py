"""The teacher stage: a domain-adapted reasoning LLM that labels (query, service) pairs.

Steps (:mod:`teacher.steps`; each a config dataclass beside the function that runs it, TRL style):

* :mod:`~teacher.steps.dapt`      continued causal-LM pre-training on query and service text;
* :mod:`~teacher.steps.bootstrap` seed chains by rejection sampling and rationalisation (source a);
* :mod:`~teacher.steps.sft`       reasoning SFT (TRL ``SFTTrainer`` + LoRA) on seed chains;
* :mod:`~teacher.steps.reward_sampling` sampled outputs scored by the reward;
* :mod:`~teacher.steps.dpo`       chosen/rejected from the scored samples -> TRL ``DPOTrainer``;
* :mod:`~teacher.steps.calibrate` per-label logit offsets that undo the teacher's label prior;
* :mod:`~teacher.steps.evaluate`  accuracy, macro-F1, per-class F1, parse failures, reward per dimension;
* :mod:`~teacher.steps.annotate`  batched, resumable, shardable labelling of a pool;
* :mod:`~teacher.steps.oracle`    human labels with program-written chains (no model).

Beside them: :mod:`teacher.settings` (what the step configs share), :mod:`teacher.backends` (local
and HTTP generation), :mod:`teacher.chains` (prompt, chain parser, attribute program, reward, seed
chains), :mod:`teacher.model` (loading and converting the LLM), :mod:`teacher.trainer` (what the
training steps share) and :mod:`relevance.cli.teacher`. Annotation records follow the core's contract,
:mod:`relevance.annotations`.

A trained teacher is a base causal LM plus LoRA adapters merged in order, described by a
``teacher.json`` (see :mod:`~teacher.model`). Importing this package (or its ``cli``) does not
import torch; the heavy modules import it themselves.
"""
