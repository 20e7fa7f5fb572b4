"""Session: gate-driven branch execution, bound zeros, policies, bad input."""
import functools

import numpy as np
import pytest

from dynmm_edge.errors import DataError, DynMMError
from dynmm_edge.runtime.policy import (ArgmaxPolicy, BiasPolicy, BudgetPolicy, FixedPolicy, GatePolicy,
                                       HysteresisPolicy, make_policy)
from dynmm_edge.types import Frame

PATHS = (0, 1, 2, 3, 4, 5)
COST = (0.0, 0.1, 0.3, 0.5, 0.8, 1.0)


class ScriptedPolicy(GatePolicy):
    """Returns the next path from a list (a stand-in for a path-switching gate)."""
    name = "scripted"

    def __init__(self, seq):
        self.seq, self.i = list(seq), 0

    def decide(self, logits):
        p = self.seq[self.i % len(self.seq)]
        self.i += 1
        return p


class CountingBackend:
    """Wraps a backend and counts zeros()/upload() calls."""

    def __init__(self, inner):
        self.inner, self.zeros_calls, self.uploads = inner, 0, 0
        self.name = inner.name

    def __getattr__(self, k):
        return getattr(self.inner, k)

    def zeros(self, *a, **k):
        self.zeros_calls += 1
        return self.inner.zeros(*a, **k)

    def upload(self, x):
        self.uploads += 1
        return self.inner.upload(x)

    def close(self):
        self.closed = getattr(self, "closed", 0) + 1
        self.inner.close()


@pytest.fixture
def session(tiny_export):
    pytest.importorskip("onnxruntime")
    from dynmm_edge.backends import make_backend
    from dynmm_edge.runtime.session import Session
    _, _, m = tiny_export
    backend = CountingBackend(make_backend("ort"))
    s = Session(m, backend)
    s.labels_at = "model"  # these tests compare with the eager model at its input size
    yield s
    s.close()


def test_depth_branches_run_only_when_path_needs_them(session, rgbd_frame):
    seq = [0, 5, 2, 0, 3, 1, 5, 0]
    session.set_policy(ScriptedPolicy(seq))
    results = [session.infer(rgbd_frame) for _ in seq]
    assert [r.path for r in results] == seq
    for r, k in zip(results, seq):
        assert r.branches_run == ("gate", *[f"depth{i}" for i in range(k)], "trunk")
        assert r.labels.shape == (64, 64)
    # per-branch call counts: depth{i} ran on exactly the frames whose path k > i
    for i in range(5):
        assert session.calls[f"depth{i}"] == sum(k > i for k in seq)
    assert session.calls["gate"] == session.calls["trunk"] == len(seq)


def test_zero_features_bound_once_not_per_frame(session, rgbd_frame):
    zeros_at_start = session.backend.zeros_calls
    assert zeros_at_start == 5  # one buffer per skippable depth feature
    uploads_at_start = session.backend.uploads
    session.set_policy(ScriptedPolicy([0, 2, 5]))
    for _ in range(6):
        session.infer(rgbd_frame)
    assert session.backend.zeros_calls == zeros_at_start
    assert session.backend.uploads - uploads_at_start == 6 * 2  # rgb and depth only


def test_session_owns_and_closes_its_backend(tiny_export, rgbd_frame):
    pytest.importorskip("onnxruntime")
    from dynmm_edge.backends import make_backend
    from dynmm_edge.runtime.session import Session
    _, _, m = tiny_export
    backend = CountingBackend(make_backend("ort"))
    with Session(m, backend) as s:
        runners = list(s.runners.values())
        assert s.infer(rgbd_frame, path=2).path == 2 and not getattr(backend, "closed", 0)
    assert backend.closed == 1 and not any(r.is_active for r in runners)
    s.close()  # idempotent for the session's runners; the backend close is idempotent too
    failing = CountingBackend(make_backend("ort"))
    with pytest.raises(DynMMError, match="unknown policy"):
        Session(m, failing, policy="magic")
    assert failing.closed == 1  # a failed start-up releases the backend as well


def test_fixed_policy_skips_the_gate(session, rgbd_frame):
    session.set_policy("fixed:full")
    r = session.infer(rgbd_frame)
    assert "gate" not in r.branches_run and r.path == 5 and r.gate_probs is None
    session.set_policy("fixed:rgb")
    r = session.infer(rgbd_frame)
    assert r.branches_run == ("trunk",) and r.depth_macs == 0


def test_gate_argmax_matches_eager_model(tiny_export, session, rgbd_frame):
    import torch
    from dynmm_edge.data.preprocess import PreprocessConfig, preprocess
    net, _, m = tiny_export
    session.set_policy("argmax")
    r = session.infer(rgbd_frame, return_logits=True)
    rgb, depth = preprocess(rgbd_frame.rgb, rgbd_frame.depth, 0.001, PreprocessConfig.from_dict(m.preprocess))
    with torch.no_grad():
        logits = net.gate_logits(torch.from_numpy(rgb), torch.from_numpy(depth))
        ref = net(torch.from_numpy(rgb), torch.from_numpy(depth))
    assert r.path == int(logits.argmax())
    assert np.allclose(r.gate_probs, torch.softmax(logits, 1)[0].numpy(), atol=1e-5)
    assert np.array_equal(r.labels, ref.argmax(1)[0].numpy())
    assert r.times_ms["total"] >= r.times_ms["trunk"] > 0


def test_all_zero_and_nan_depth_are_processed(session):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    zero = session.infer(Frame(1, rgb, np.zeros((48, 64), np.uint16)), path=5)
    nan = session.infer(Frame(2, rgb, np.full((48, 64), np.nan, np.float32)), path=5)
    assert zero.labels.shape == nan.labels.shape == (64, 64)
    assert np.array_equal(zero.labels, nan.labels)  # NaN is invalid depth, same as 0


def test_mismatched_sizes_are_a_clear_error(session):
    rgb = np.zeros((48, 64, 3), np.uint8)
    with pytest.raises(DataError, match="frame 3"):
        session.infer(Frame(3, rgb, np.zeros((40, 64), np.uint16)))


def test_unknown_path_and_precision_errors(session, rgbd_frame, tiny_export):
    from dynmm_edge.manifest import parse_precision
    with pytest.raises(DynMMError, match="not one of this model's paths"):
        session.infer(rgbd_frame, path=9)
    _, _, m = tiny_export
    assert parse_precision("depth=int8", m)["depth3"] == "int8"
    assert parse_precision("depth=int8", m)["trunk"] == "fp32"
    assert set(parse_precision("fp16", m).values()) == {"fp16"}
    assert parse_precision({"depth": "int8", "depth3": "fp32"}, m)["depth3"] == "fp32"
    with pytest.raises(DynMMError, match="unknown branch or kind 'decoder'"):
        parse_precision("decoder=fp16", m)
    with pytest.raises(DynMMError, match="'int4' for 'depth' is not one of"):
        parse_precision("depth=int4", m)


# ---------------------------------------------------------------------------- policies alone
def test_bias_policy_trades_accuracy_for_compute():
    logits = np.log(np.array([0.05, 0.05, 0.1, 0.1, 0.2, 0.5]))
    assert ArgmaxPolicy().bind(PATHS, COST).decide(logits) == 5
    assert BiasPolicy(0.0).bind(PATHS, COST).decide(logits) == 5
    assert BiasPolicy(5.0).bind(PATHS, COST).decide(logits) == 0
    assert BiasPolicy(-5.0).bind(PATHS, COST).decide(np.log([0.9, 0.02, 0.02, 0.02, 0.02, 0.02])) == 5


def test_hysteresis_holds_against_flicker():
    h = HysteresisPolicy(margin=1.0).bind(PATHS, COST)
    a = np.log([0.55, 0.01, 0.01, 0.01, 0.01, 0.41])
    b = np.log([0.41, 0.01, 0.01, 0.01, 0.01, 0.55])
    assert [h.decide(x) for x in (a, b, a, b)] == [0, 0, 0, 0]  # small swings do not switch
    strong = np.log([0.02, 0.01, 0.01, 0.01, 0.01, 0.94])
    assert h.decide(strong) == 5
    assert ArgmaxPolicy().bind(PATHS, COST).decide(b) == 5


def test_budget_controller_reaches_target_cost():
    from dynmm_edge.types import Result
    rng = np.random.default_rng(0)
    pol = BudgetPolicy(0.4).bind(PATHS, COST)
    costs = []
    for i in range(600):
        logits = rng.normal(size=6)
        logits[5] += 2.0  # the gate alone would mostly pick full depth
        p = pol.decide(logits)
        costs.append(COST[PATHS.index(p)])
        pol.observe(Result(i, np.zeros((1, 1)), p, {"total": 1.0}, ()))
    assert np.mean(costs[:5]) > 0.6  # before the controller has acted, the gate picks deep paths
    assert abs(np.mean(costs[-200:]) - 0.4) < 0.1
    assert pol.bias > 0


@pytest.mark.parametrize("spec,cls,attrs", [
    ("argmax", ArgmaxPolicy, {}),
    ("bias:0.5", BiasPolicy, {"bias": 0.5}),
    ("hysteresis:0.3+bias:1", HysteresisPolicy, {"margin": 0.3, "inner.bias": 1.0}),
    ("hysteresis:0.7", HysteresisPolicy, {"margin": 0.7, "inner.bias": 0.0}),
    ("fixed:rgb", FixedPolicy, {"which": "rgb"}),
    ("budget:0.4", BudgetPolicy, {"target": 0.4, "metric": "cost"}),
    ("budget-ms:20", BudgetPolicy, {"target": 20.0, "metric": "ms"})])
def test_make_policy(spec, cls, attrs):
    pol = make_policy(spec)
    assert type(pol) is cls
    for dotted, want in attrs.items():
        value = pol
        for part in dotted.split("."):
            value = getattr(value, part)
        assert value == want, f"{spec}: {dotted} is {value!r}, expected {want!r}"


def test_parsed_hysteresis_margin_decides_when_to_switch():
    """A swing of 0.5 in log-probability switches under margin 0.3 and holds under margin 0.7."""
    hold = np.log([0.6, 0.01, 0.01, 0.01, 0.01, 0.36])
    swing = np.array([0.0, -9, -9, -9, -9, 0.5])  # path 5 ahead of path 0 by 0.5
    for spec, switched in (("hysteresis:0.3", 5), ("hysteresis:0.7", 0)):
        h = make_policy(spec).bind(PATHS, COST)
        assert h.decide(hold) == 0
        assert h.decide(swing) == switched, spec


@pytest.mark.parametrize("spec", ["magic", "bias:abc", "budget:1.5", "fixed:x"])
def test_make_policy_errors(spec):
    with pytest.raises(DynMMError):
        make_policy(spec).bind(PATHS, COST)


def test_resolve_model_errors(tmp_path):
    from dynmm_edge.errors import ManifestError
    from dynmm_edge.models import resolve_model
    with pytest.raises(DynMMError, match="not a model folder"):
        resolve_model("no-such-model")
    with pytest.raises(ManifestError, match="without manifest.json"):
        resolve_model(tmp_path)


def test_checkpoint_exported_on_the_fly_into_hash_keyed_cache(tmp_path, monkeypatch, tiny_export):
    pytest.importorskip("torch")
    import dynmm_edge.export.exporter as exporter
    from dynmm_edge.model.checkpoints import save_checkpoint
    from dynmm_edge.models import open_session
    net, meta, _ = tiny_export
    monkeypatch.setenv("DYNMM_EDGE_CACHE", str(tmp_path / "cache"))
    exports = []
    real_export = exporter.export_model

    @functools.wraps(real_export)  # keeps the signature the cache key reads the settings from
    def counting_export(*a, **k):
        exports.append(a[0])
        return real_export(*a, **k)

    monkeypatch.setattr(exporter, "export_model", counting_export)
    ckpt = save_checkpoint(tmp_path / "m.pt", net, meta)
    with open_session(str(ckpt)) as s:
        folder = s.manifest.folder
        assert folder.parent == tmp_path / "cache" / "models"
    first = (folder / "manifest.json").stat()
    with open_session(str(ckpt)) as s2:  # second time: reused, not re-exported
        assert s2.manifest.folder == folder
    again = (folder / "manifest.json").stat()
    assert exports == [str(ckpt)]  # exported exactly once
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)


def test_model_cache_key_covers_source_version_and_export_settings():
    from dynmm_edge.models import export_settings, model_cache_key
    pytest.importorskip("torch")
    settings = export_settings()
    assert {"opset", "height", "width", "fp16", "dynamic_batch"} <= set(settings)
    assert "force" not in settings and "progress" not in settings
    key = model_cache_key("sha256:ab", settings, version="0.1.0")
    assert key == model_cache_key("sha256:ab", dict(settings), version="0.1.0")
    assert key != model_cache_key("sha256:ab", settings, version="0.2.0")
    assert key != model_cache_key("sha256:ab", {**settings, "opset": settings["opset"] + 1}, version="0.1.0")
    assert key != model_cache_key("sha256:cd", settings, version="0.1.0")


def test_changed_branch_file_is_refused_at_load(tiny_export, tmp_path):
    """Backends trust the manifest's hash check, so loading must catch a modified branch file."""
    import shutil
    from dynmm_edge.errors import ManifestError
    from dynmm_edge.manifest import load_manifest
    _, _, m = tiny_export
    folder = tmp_path / "model"
    shutil.copytree(m.folder, folder)
    name = m.branches[1].file
    with open(folder / name, "ab") as f:
        f.write(b"\0")
    with pytest.raises(ManifestError, match=rf"sha256 of .*{name}.*manifest says"):
        load_manifest(folder)
    assert load_manifest(folder, verify_hashes=False).branch(m.branches[1].name).file == name
