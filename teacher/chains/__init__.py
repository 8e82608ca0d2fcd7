"""The teacher's reasoning chains: the versioned prompt and chain parser (:mod:`~teacher.chains.prompts`),
the attribute program that writes chains (:mod:`~teacher.chains.attributes`), the multi-dimensional
reward (:mod:`~teacher.chains.reward`) and the SFT seed chains (:mod:`~teacher.chains.seeds`)."""
