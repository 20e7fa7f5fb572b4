"""`dynmm-edge selftest DIR`: does this machine's backend compute what ONNX Runtime FP32 computes?

Per branch, feeds come from running the upstream branches in FP32 on a synthetic RGB-D frame, so
every branch sees realistic activations. Tolerances depend on the precision under test.
"""
import argparse
import time

import numpy as np

# max |a-b| / max|ref| allowed, and the minimum label agreement for the trunk
TOLERANCE = {"fp32": (1e-3, 0.999), "fp16": (3e-2, 0.98), "int8": (1.5e-1, 0.90)}


EPILOG = """examples:
  dynmm-edge selftest models/r34 --precision gate=fp16,depth=int8   # TensorRT; exit 3 if it is missing
  dynmm-edge selftest demo --allow-fallback                          # no TensorRT: PyTorch, said FALLBACK
  dynmm-edge selftest ckpt.pth --backend ort --precision fp16 --json selftest.json
exit status: 0 every output checked on the requested backend and precision (or FALLBACK with
--allow-fallback); 1 an output out of tolerance (FAIL) or an error; 3 the requested backend or
precision is not available here and --allow-fallback was not given.
"""
FALLBACK_EXIT = 3


def add_parser(sub) -> None:
    from dynmm_edge.apps.common import add_json, add_model
    p = sub.add_parser("selftest", help="compare a backend's branch outputs with ONNX Runtime FP32",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    add_model(p)
    p.add_argument("--backend", default="auto", choices=["auto", "trt", "torch", "ort"],
                   help="backend under test (auto = TensorRT; anything else runs only with --allow-fallback)")
    p.add_argument("--precision", default="fp32", help="fp32 | fp16 | int8 | gate=fp16,depth=int8,...")
    p.add_argument("--allow-fallback", action="store_true",
                   help="without the requested backend/precision, check what can run instead (reported FALLBACK)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--runs", type=int, default=20, help="timed runs per branch")
    add_json(p, help="write the per-branch results (backend and precision that ran) as JSON here")
    p.set_defaults(func=run)


def _reference_feeds(m, seed=0):
    """FP32 ORT outputs of every branch on one synthetic frame (full-depth path)."""
    from dynmm_edge.backends.ort import OrtBackend
    from dynmm_edge.data.preprocess import PreprocessConfig, preprocess
    from dynmm_edge.data.synthetic import SynthConfig, SyntheticWorld
    f = SyntheticWorld(SynthConfig(width=m.width, height=m.height, seed=seed)).frame(0)
    rgb, depth = preprocess(f.rgb, f.depth, 0.001, PreprocessConfig.from_dict(m.preprocess))
    feeds = {"rgb": rgb, "depth": depth}
    if m.gate.get("present_input"):
        feeds[m.gate["present_input"]] = np.ones(5, np.float32)
    ort = OrtBackend()
    for name in m.paths[m.full_path]:
        b = m.branch(name)
        with ort.open(b, m, "fp32") as r:
            feeds.update(r.infer({t.name: feeds[t.name] for t in b.inputs}))
    return _region_reference(m, feeds, ort)


def _region_reference(m, feeds, ort):
    """Region branches (docs/REGIONS.md): FP32 ORT outputs with a checkerboard of active tiles, each tile
    stage fed the gathered windows of the previous stage's scattered map, as the Session does."""
    from dynmm_edge.manifest import region_spec
    from dynmm_edge.tiles import TileGrid, gather, scatter
    spec = region_spec(m)
    if spec is None:
        return feeds
    grid = TileGrid(spec.tile, m.height, m.width)
    mask = (np.add.outer(np.arange(grid.rows), np.arange(grid.cols)) % 2 == 0)
    ids, x = grid.ids_of(mask), feeds[spec.stem_output]
    feeds[spec.mask_input] = mask[None].astype(np.float32)
    for st in spec.stages:
        feeds[st.input] = np.ascontiguousarray(gather(x, grid, ids, st.in_stride, st.halo))
        with ort.open(m.branch(st.branch), m, "fp32") as r:
            feeds.update(r.infer({st.input: feeds[st.input]}))
        x = feeds[st.feature] = scatter(feeds[st.output], grid, ids, st.in_stride, st.out_stride, st.halo)
    for name in (spec.gate_branch, spec.trunk_branch):
        b = m.branch(name)
        with ort.open(b, m, "fp32") as r:
            out = r.infer({t.name: feeds[t.name] for t in b.inputs})
        feeds.update(out if name == spec.gate_branch else {f"{name}/{k}": v for k, v in out.items()})
    return feeds


def _pick_backend(args):
    """(name, backend, fallback note or None). The requested backend is TensorRT for 'auto'."""
    from dynmm_edge.backends.tensorrt import trt_available
    from dynmm_edge.errors import DynMMError
    from dynmm_edge.models import open_backend as make_backend
    choice, note = args.backend, None
    if choice in ("auto", "trt"):
        ok, why = trt_available()
        if ok:
            return "trt", make_backend("trt"), None
        if not args.allow_fallback:
            raise _Fallback(f"TensorRT is not usable here ({why}); nothing was checked. Run it on the target, "
                            "or pass --allow-fallback to check PyTorch against ONNX Runtime instead (FALLBACK)")
        note = f"TensorRT not usable ({why})"
        choice = "torch"
    if choice == "torch":
        from dynmm_edge._lazy import available
        if not available("torch"):
            if not args.allow_fallback:
                raise DynMMError("PyTorch is not installed: pip install 'dynmm-edge[torch]'")
            return "ort", make_backend("ort"), (note + "; " if note else "") + "PyTorch not installed either"
        import torch
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        return "torch", make_backend("torch", device=device, fp16=(args.precision == "fp16" and device == "cuda")), note
    return choice, make_backend(choice), note


class _Fallback(Exception):
    """The requested backend/precision cannot run here and fallback was not allowed."""


def _ran_precision(name, backend, branch, wanted) -> str:
    """The precision that really executes for this branch on this backend."""
    if name == "trt":
        return wanted
    if name == "torch":
        return "fp16" if getattr(backend, "fp16", False) else "fp32"
    return wanted if wanted in branch.variants else "fp32"


def _check_branch(name, backend, m, b, prec, ref, runs):
    """Rows (branch, output, requested, ran, ok, metric, p50 ms) for one branch."""
    ran = _ran_precision(name, backend, b, prec)
    tol, min_agree = TOLERANCE[ran]
    with backend.open(b, m, ran if name != "torch" else None) as r:
        dev_feeds = {t.name: backend.upload(ref[t.name]) for t in b.inputs}
        out = r.infer(dev_feeds)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            r.infer(dev_feeds)
            backend.synchronize()
            times.append((time.perf_counter() - t0) * 1e3)
    rows = []
    for t in b.outputs:
        got, want = backend.download(out[t.name]), ref.get(f"{b.name}/{t.name}", ref[t.name])
        if t.name == "labels":
            agree = float((got == want).mean())
            ok, metric = agree >= min_agree, f"labels agree {100 * agree:.2f}%"
        else:
            err = float(np.abs(got.astype(np.float64) - want).max() / max(np.abs(want).max(), 1e-6))
            ok, metric = err <= tol, f"max rel err {err:.2e} (tol {tol:.0e})"
        rows.append({"branch": b.name, "output": t.name, "requested": prec, "ran": ran, "ok": bool(ok),
                     "metric": metric, "p50_ms": float(np.median(times))})
    return rows


def _verdict(row, requested_backend, ran_backend) -> str:
    if not row["ok"]:
        return "FAIL"
    return "PASS" if ran_backend == requested_backend and row["ran"] == row["requested"] else "FALLBACK"


def run(args) -> int:
    import json
    import sys

    from dynmm_edge.apps.common import resolve_model
    from dynmm_edge.manifest import load_manifest
    from dynmm_edge.manifest import parse_precision
    m = load_manifest(resolve_model(args.model, progress=lambda s: print(f"  {s}", file=sys.stderr)))
    requested = "trt" if args.backend == "auto" else args.backend
    try:
        name, backend, note = _pick_backend(args)
    except _Fallback as exc:
        print(f"dynmm-edge selftest: FALLBACK not allowed: {exc}", file=sys.stderr)
        return FALLBACK_EXIT
    precisions = parse_precision(args.precision, m)
    ref = _reference_feeds(m)
    rows = []
    try:
        for b in m.branches:
            rows += _check_branch(name, backend, m, b, precisions[b.name], ref, args.runs)
    finally:
        backend.close()
    for row in rows:
        row["result"] = _verdict(row, requested, name)
    print(f"requested: {requested} {args.precision}   ran: {name} ({backend.describe()})   "
          f"reference: ONNX Runtime FP32")
    print(f"{'branch':<8} {'output':<14} {'wanted':<6} {'ran':<10} {'result':<8} {'p50 ms':>8}  detail")
    for r in rows:
        print(f"{r['branch']:<8} {r['output']:<14} {r['requested']:<6} {name + ' ' + r['ran']:<10} {r['result']:<8} "
              f"{r['p50_ms']:>8.3f}  {r['metric']}")
    failed = sum(r["result"] == "FAIL" for r in rows)
    fallback = sorted({f"{name} {r['ran']} for {r['requested']}" for r in rows if r["result"] == "FALLBACK"})
    if failed:
        verdict, code = f"FAIL: {failed}/{len(rows)} outputs out of tolerance", 1
    elif fallback:
        why = f"{note}; " if note else ""
        verdict = (f"FALLBACK: {why}ran {', '.join(fallback)} instead of {requested}; outputs within tolerance of "
                   f"ONNX Runtime FP32, but the requested {requested} configuration was NOT checked")
        code = 0 if args.allow_fallback else FALLBACK_EXIT
    else:
        verdict, code = f"PASS: {len(rows)}/{len(rows)} outputs within tolerance on {name}", 0
    print(verdict)
    if args.json:
        from dynmm_edge.atomic import write_json
        write_json(args.json, {"model": str(m.folder), "requested": {"backend": requested, "precision": args.precision},
                               "ran": {"backend": name, **json.loads(json.dumps(backend.describe(), default=str))},
                               "fallback_note": note, "verdict": verdict.split(":")[0], "exit_status": code,
                               "rows": rows})
    return code
