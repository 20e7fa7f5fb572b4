"""`dynmm-edge export CKPT_OR_PRESET -o DIR`: cut the network into branch ONNX files + manifest."""
import argparse

from dynmm_edge.apps.argtypes import multiple_of_32, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="checkpoint or preset -> model folder (ONNX per branch + manifest.json)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  dynmm-edge export demo -o models/demo\n"
                              "  dynmm-edge export esanet_r34_nyuv2.pth -o models/r34 --height 480 --width 640 --fp16")
    p.add_argument("model", help="checkpoint file (ours, ESANet or DynMM), model folder, preset name, or 'demo'")
    p.add_argument("-o", "--out", required=True, help="model folder to create")
    p.add_argument("--height", type=multiple_of_32, default=None, help="input height (multiple of 32; default: the model's)")
    p.add_argument("--width", type=multiple_of_32, default=None, help="input width (multiple of 32; default: the model's)")
    p.add_argument("--opset", type=positive_int, default=17, help="ONNX opset (TensorRT 8.5 parses up to 17)")
    p.add_argument("--dynamic-batch", action="store_true", help="export a dynamic batch dimension")
    p.add_argument("--fp16", action="store_true", help="also write FP16 ONNX variants (FP32 inputs/outputs)")
    p.add_argument("--force", action="store_true", help="replace an existing folder")
    p.set_defaults(func=run)


def run(args) -> int:
    from dynmm_edge.export.exporter import export_model
    m = export_model(args.model, args.out, height=args.height, width=args.width, opset=args.opset,
                     dynamic_batch=args.dynamic_batch, force=args.force, fp16=args.fp16,
                     progress=lambda msg: print(f"  {msg}"))
    print(f"exported {len(m.branches)} branches to {m.folder} ({m.width}x{m.height}, paths {list(m.path_values)})")
    print(f"{'branch':<8} {'MMACs':>10} {'params':>10}")
    for b in m.branches:
        print(f"{b.name:<8} {b.macs / 1e6:>10.1f} {b.params:>10d}")
    return 0
