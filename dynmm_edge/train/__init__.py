"""Training and evaluation of DynMM models (torch): losses, schedules, datasets, loop, DDP, eval."""
from dynmm_edge.train.evaluate import confusion_matrix, evaluate, metrics_from_confusion
from dynmm_edge.train.loop import TrainConfig, train

__all__ = ["TrainConfig", "train", "evaluate", "confusion_matrix", "metrics_from_confusion"]
