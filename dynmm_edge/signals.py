"""SIGTERM and SIGHUP handled like Ctrl-C: one clean stop path for every command.

systemd and docker stop services with SIGTERM, a closed terminal sends SIGHUP. Python turns only
SIGINT into KeyboardInterrupt; here the other two raise `Interrupted` (a KeyboardInterrupt
subclass), so every `except KeyboardInterrupt` / `finally` that already finalises outputs on Ctrl-C
does the same for them. The exit status is 128 + signal number (130 SIGINT, 143 SIGTERM, 129 SIGHUP).

`fault_point(label)` is a test seam: with DYNMM_EDGE_FAULT_STEP=N (and DYNMM_EDGE_FAULT_SIGNAL=
TERM|KILL|INT|HUP) the N-th call sends that signal to this process, so tests can kill a command
between any two write steps. Without the variable it only counts.
"""
import contextlib
import os
import signal
import threading

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived; `signum` says which, `exit_code` is what the process should return."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def exit_code_of(exc: BaseException) -> int:
    """130 for a plain Ctrl-C, 128 + signal for an Interrupted."""
    return getattr(exc, "exit_code", 128 + signal.SIGINT)


_defer_depth = 0
_pending = None


def _raise(signum, _frame):
    global _pending
    if _defer_depth:  # inside deferred(): finish the critical step first
        _pending = _pending or signum
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def deferred():
    """Hold stop signals while outputs are finalised (closing sinks, writing the summary).

    A signal that arrives inside is raised as Interrupted when the block ends.
    """
    global _defer_depth, _pending
    _defer_depth += 1
    try:
        yield
    finally:
        _defer_depth -= 1
        if not _defer_depth and _pending is not None:
            sig, _pending = _pending, None
            raise Interrupted(sig)


@contextlib.contextmanager
def stop_signals(handler=None):
    """Within the block, SIGINT/SIGTERM/SIGHUP raise Interrupted in the main thread (or call
    `handler(signum, frame)` instead, for a command that finishes its unit of work itself).

    Outside the main thread (signals cannot be installed there) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for name in STOP_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is None:  # SIGHUP does not exist on Windows
            continue
        previous[sig] = signal.signal(sig, handler or _raise)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_fault_calls = 0


def fault_point(label: str) -> None:
    """Count a write step; send the configured signal at step DYNMM_EDGE_FAULT_STEP (tests only)."""
    global _fault_calls
    _fault_calls += 1
    step = os.environ.get("DYNMM_EDGE_FAULT_STEP")
    if os.environ.get("DYNMM_EDGE_FAULT_TRACE"):
        import sys
        print(f"fault_point {_fault_calls}: {label}", file=sys.stderr, flush=True)
    if step is None or int(step) != _fault_calls:
        return
    name = os.environ.get("DYNMM_EDGE_FAULT_SIGNAL", "TERM").upper()
    sig = getattr(signal, name if name.startswith("SIG") else f"SIG{name}")
    os.kill(os.getpid(), sig)  # a Python handler runs at the next bytecode, i.e. at this step

