"""atomic.py: no process-wide side effect at import; artefact modes follow the umask read lazily."""
import importlib
import os
import stat


def test_import_does_not_touch_the_umask(monkeypatch):
    import dynmm_edge.atomic as atomic

    def refuse(*_):
        raise AssertionError("os.umask called at import time")

    monkeypatch.setattr(os, "umask", refuse)
    fresh = importlib.reload(atomic)
    assert fresh._umask is None  # nothing read yet
    monkeypatch.undo()
    importlib.reload(atomic)


def test_umask_read_once_and_applied(tmp_path, monkeypatch):
    import dynmm_edge.atomic as atomic
    old = os.umask(0o027)
    try:
        monkeypatch.setattr(atomic, "_umask", None)
        assert atomic.current_umask() == 0o027
        os.umask(0o002)  # cached: a later change is not picked up mid-process
        assert atomic.current_umask() == 0o027
        p = atomic.write_text(tmp_path / "a.txt", "x")
        assert stat.S_IMODE(p.stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_fallback_without_proc_restores_the_umask(monkeypatch):
    import builtins

    import dynmm_edge.atomic as atomic
    real_open = builtins.open

    def no_proc(path, *a, **k):
        if str(path).startswith("/proc/"):
            raise OSError("no /proc here")
        return real_open(path, *a, **k)

    old = os.umask(0o077)
    try:
        monkeypatch.setattr(builtins, "open", no_proc)
        assert atomic._read_umask() == 0o077
        assert os.umask(0o077) == 0o077  # restored after reading
    finally:
        os.umask(old)


def test_current_umask_is_read_once_across_threads(monkeypatch, n=8):
    import threading

    import dynmm_edge.atomic as atomic
    calls = []
    monkeypatch.setattr(atomic, "_umask", None)
    monkeypatch.setattr(atomic, "_read_umask", lambda: calls.append(1) or 0o022)
    threads = [threading.Thread(target=atomic.current_umask) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and atomic.current_umask() == 0o022
