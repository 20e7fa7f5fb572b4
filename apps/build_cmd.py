"""`dynmm-edge build MODEL`: prepare a model folder for a backend (TensorRT engines, FP16 variants)."""
import argparse
import time

EPILOG = """examples:
  dynmm-edge build models/r34 --backend trt --precision fp16
  dynmm-edge build models/r34 --backend trt --precision gate=fp16,depth=int8,trunk=fp16   # int8 needs `calibrate` first
  dynmm-edge build demo --backend ort --precision fp16      # FP16 ONNX variants (demo: into a working copy)
  dynmm-edge build ckpt.pth --backend ort -o models/ckpt    # a checkpoint is exported first
MODEL is a model folder, a checkpoint, a preset or 'demo'. Engines are cached in MODEL/trt_engines keyed
by ONNX hash, TensorRT version, GPU, precision and profile.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("build", help="build TensorRT engines / FP16 variants for a model folder",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    from dynmm_edge.apps.common import add_model, add_output
    add_model(p)
    add_output(p, help="write into a copy of the model folder here (default: in place; 'demo' is copied "
                       "to the cache, since the shipped model is read-only)")
    p.add_argument("--backend", default="trt", choices=["trt", "ort", "torch"])
    p.add_argument("--precision", default="fp32", help="fp32 | fp16 | int8 | gate=fp16,depth=int8,...")
    p.add_argument("--workspace-mb", type=int, default=1024, help="TensorRT workspace limit")
    p.add_argument("--cache-dir", default=None, help="engine cache (default DIR/trt_engines)")
    p.add_argument("--device", default=None, help="torch backend device")
    p.set_defaults(func=run)


def run(args) -> int:
    from dynmm_edge.errors import DynMMError
    from dynmm_edge.manifest import load_manifest, parse_precision
    from dynmm_edge.models import open_backend
    from dynmm_edge.apps.common import resolve_model, writable_model
    say = lambda msg: print(f"  {msg}")  # noqa: E731
    writes = args.backend in ("ort", "trt") or args.output
    m = load_manifest(writable_model(args.model, args.output, say) if writes else resolve_model(args.model, say))
    precisions = parse_precision(args.precision, m)
    if args.backend == "ort" and "fp16" in precisions.values():
        from dynmm_edge.export.fp16 import add_fp16_variants
        m = add_fp16_variants(m.folder, [b for b, p in precisions.items() if p == "fp16"],
                              progress=lambda s: print(f"  {s}"))
    if args.backend == "trt":
        from dynmm_edge.backends.tensorrt import trt_available
        ok, why = trt_available()
        if not ok:
            raise DynMMError(f"TensorRT is not usable on this machine: {why}. Build engines on the target "
                             f"(Jetson / GPU box); `dynmm-edge build DIR --backend ort` works anywhere.")
        backend = open_backend("trt", cache_dir=args.cache_dir, workspace_mb=args.workspace_mb)
    elif args.backend == "torch":
        backend = open_backend("torch", device=args.device or "cpu")
    else:
        backend = open_backend("ort")
    print(f"{'branch':<8} {'precision':<9} {'seconds':>8}  artefact")
    for b in m.branches:
        t0 = time.perf_counter()
        if args.backend == "trt":
            artefact = backend.engine_for(b, m, precisions[b.name])
        elif args.backend == "ort":  # an int8 variant must come from `calibrate`: the manifest error says so
            with backend.open(b, m, precisions[b.name]):
                artefact = m.file_path(b, precisions[b.name])
        else:
            with backend.open(b, m, precisions[b.name]):
                artefact = m.extra["checkpoint"]["file"]
        print(f"{b.name:<8} {precisions[b.name]:<9} {time.perf_counter() - t0:>8.2f}  {artefact}")
    backend.close()
    return 0
