"""`dynmm-edge selftest DIR`: does this machine's backend compute what ONNX Runtime FP32 computes?

Per branch, feeds come from running the upstream branches in FP32 on a synthetic RGB-D frame, so
every branch sees realistic activations. Tolerances depend on the precision under test.
"""
import argparse
import time

import numpy as np

# max |a-b| / max|ref| allowed, and the minimum label agreement for the trunk
TOLERANCE = {"fp32": (1e-3, 0.999), "fp16": (3e-2, 0.98), "int8": (1.5e-1, 0.90)}


def add_parser(sub) -> None:
    p = sub.add_parser("selftest", help="compare a backend's branch outputs with ONNX Runtime FP32",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  dynmm-edge selftest models/r34                 # TensorRT if present\n"
                              "  dynmm-edge selftest models/r34 --precision gate=fp16,depth=int8\n"
                              "  dynmm-edge selftest models/demo --backend torch")
    p.add_argument("model_dir")
    p.add_argument("--backend", default="auto", choices=["auto", "trt", "torch", "ort"],
                   help="backend under test (auto: TensorRT if usable, else PyTorch)")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--runs", type=int, default=20, help="timed runs per branch")
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
    return feeds


def _pick_backend(args):
    from dynmm_edge.backends.tensorrt import trt_available
    from dynmm_edge.models import open_backend
    choice = args.backend
    if choice in ("auto", "trt"):
        ok, why = trt_available()
        if ok:
            return "trt", open_backend("trt")
        if choice == "trt":
            from dynmm_edge.errors import DynMMError
            raise DynMMError(f"TensorRT is not usable here: {why}")
        print(f"TensorRT is not available on this machine ({why}): comparing PyTorch with ONNX Runtime instead.")
        choice = "torch"
    if choice == "torch":
        from dynmm_edge._lazy import available
        if not available("torch"):
            print("PyTorch is not installed either: comparing ONNX Runtime with itself (sanity check only).")
            return "ort", open_backend("ort")
        import torch
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        return "torch", open_backend("torch", device=device, fp16=(args.precision == "fp16" and device == "cuda"))
    return choice, open_backend(choice)


def run(args) -> int:
    from dynmm_edge.manifest import load_manifest, parse_precision
    m = load_manifest(args.model_dir)
    name, backend = _pick_backend(args)
    precisions = parse_precision(args.precision, m)
    ref = _reference_feeds(m)
    rows, failed = [], 0
    for b in m.branches:
        prec = precisions[b.name]
        tol, min_agree = TOLERANCE[prec]
        with backend.open(b, m, prec if prec in b.variants or name == "trt" else None) as r:
            dev_feeds = {t.name: backend.upload(ref[t.name]) for t in b.inputs}
            out = r.infer(dev_feeds)
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                r.infer(dev_feeds)
                backend.synchronize()
                times.append((time.perf_counter() - t0) * 1e3)
        for t in b.outputs:
            got, want = backend.download(out[t.name]), ref[t.name]
            if t.name == "labels":
                agree = float((got == want).mean())
                ok = agree >= min_agree
                metric = f"labels agree {100 * agree:.2f}%"
            else:
                err = float(np.abs(got.astype(np.float64) - want).max() / max(np.abs(want).max(), 1e-6))
                ok = err <= tol
                metric = f"max rel err {err:.2e} (tol {tol:.0e})"
            failed += not ok
            rows.append((b.name, t.name, prec, "PASS" if ok else "FAIL", metric, float(np.median(times))))
    print(f"backend under test: {name} ({backend.describe()})  reference: ONNX Runtime FP32")
    print(f"{'branch':<8} {'output':<14} {'prec':<5} {'result':<6} {'p50 ms':>8}  detail")
    for br, out, prec, res, metric, ms in rows:
        print(f"{br:<8} {out:<14} {prec:<5} {res:<6} {ms:>8.3f}  {metric}")
    print(f"{len(rows) - failed}/{len(rows)} outputs within tolerance")
    backend.close()
    return 1 if failed else 0
