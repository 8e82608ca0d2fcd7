"""The teacher's steps, one module each, every one a config dataclass beside the function that runs it."""
