"""Teacher annotations: the versioned record contract (:mod:`~relevance.annotations.schema`), its
reader (:mod:`~relevance.annotations.reader`) and its writer (:mod:`~relevance.annotations.writer`).

The teacher stage writes annotation files through the writer; distillation reads them through
the reader. Like the bundle's manifest, the contract lives in the core: it imports no stage and
no torch.
"""
