"""Generation backends of the teacher: the interface (:mod:`~teacher.backends.base`), the local
Hugging Face backend (:mod:`~teacher.backends.local`) and the OpenAI-compatible HTTP backend
(:mod:`~teacher.backends.http`)."""
