"""Training: the BERT student (and, later, the teacher and CRSD). Needs the ``[train]`` extra (torch)."""
