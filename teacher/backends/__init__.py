"""Generation backends of the teacher: the interface (:mod:`~teacher.backends.base`), the local
Hugging Face backend (:mod:`~teacher.backends.local`), the OpenAI-compatible HTTP backend
(:mod:`~teacher.backends.http`), a relevance bundle (:mod:`~teacher.backends.bundle`) and an
annotation file replayed (:mod:`~teacher.backends.recorded`)."""
