"""Training: data, single-process and torchrun/DDP training, atomic checkpoints, resume."""
