"""Training and evaluation of DynMM models (torch): losses, schedules, datasets, loop, DDP, eval."""
from dynmm_edge.train.loop import TrainConfig, train  # noqa: F401
from dynmm_edge.train.evaluate import evaluate, metrics_from_confusion, confusion_matrix  # noqa: F401
