"""Stateless schedules (a pure function of the step), so --resume needs no scheduler state."""
import math


def temperature_at(step: int, total_steps: int, start: float = 1.0, end: float = 1e-3) -> float:
    """Exponential annealing start -> end over `total_steps` (clamped at both ends)."""
    if total_steps <= 1:
        return float(end)
    frac = min(max(step / float(total_steps - 1), 0.0), 1.0)
    return float(start * (end / start) ** frac)


def one_cycle_lr(step: int, total_steps: int, max_lr: float, pct_start: float = 0.1,
                 div_factor: float = 25.0, final_div_factor: float = 1e3) -> float:
    """One-cycle LR: cosine warm-up from max_lr/div to max_lr, then cosine down to max_lr/(div*final)."""
    total_steps = max(int(total_steps), 1)
    step = min(max(int(step), 0), total_steps - 1)
    start_lr = max_lr / div_factor
    end_lr = start_lr / final_div_factor
    warm = max(int(round(pct_start * total_steps)), 1)
    if step < warm:
        frac = step / float(warm)
        return float(start_lr + (max_lr - start_lr) * (1 - math.cos(math.pi * frac)) / 2)
    rest = max(total_steps - warm - 1, 1)
    frac = (step - warm) / float(rest)
    return float(end_lr + (max_lr - end_lr) * (1 + math.cos(math.pi * frac)) / 2)


def cosine_lr(step: int, total_steps: int, max_lr: float) -> float:
    """Cosine decay max_lr -> 0 over `total_steps` (the gate stage: its last epochs settle instead of
    jumping between near-equal decisions, which made the learned cost split vary run to run)."""
    total_steps = max(int(total_steps), 1)
    frac = min(max(int(step), 0), total_steps) / float(total_steps)
    return float(max_lr * (1 + math.cos(math.pi * frac)) / 2)
