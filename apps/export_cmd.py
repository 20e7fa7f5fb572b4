"""`dynmm-edge export MODEL -o DIR`: cut the network into branch ONNX files + manifest."""
import argparse
import sys

EPILOG = """examples:
  dynmm-edge export demo -o models/demo
  dynmm-edge export esanet_r34_nyuv2.pth -o models/r34 --size 640x480 --fp16
  dynmm-edge export cityscapes_r34.pth -o models/cs --dataset cityscapes --size 1024x512
  dynmm-edge export r34_learned3x3.pth -o models/r34 --upsampling learned-3x3     # how that file was trained
  dynmm-edge export esanet-r34-nbt1d-nyuv2 -o models/untrained   # a preset: random weights, trained: false
"""

from dynmm_edge.apps.argtypes import positive_int


def add_parser(sub) -> None:
    from dynmm_edge.apps.common import add_import_options, add_model, add_output, add_size
    p = sub.add_parser("export", help="checkpoint or preset -> model folder (ONNX per branch + manifest.json)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    add_model(p)
    add_output(p, required=True, help="model folder to create")
    add_size(p, help="input size WxH (multiples of 32; default: the model's, 640x480 for imports)")
    add_import_options(p)
    p.add_argument("--opset", type=positive_int, default=17, help="ONNX opset (TensorRT 8.5 parses up to 17)")
    p.add_argument("--dynamic-batch", action="store_true", help="export a dynamic batch dimension")
    p.add_argument("--fp16", action="store_true", help="also write FP16 ONNX variants (FP32 inputs/outputs)")
    p.add_argument("--force", action="store_true", help="replace an existing folder")
    p.set_defaults(func=run)


def run(args) -> int:
    from dynmm_edge.apps.common import import_options, size_of
    from dynmm_edge.export.exporter import export_model
    height, width = size_of(args)
    m = export_model(args.model, args.output, height=height, width=width, opset=args.opset,
                     dynamic_batch=args.dynamic_batch, force=args.force, fp16=args.fp16,
                     progress=lambda msg: print(f"  {msg}"), import_options=import_options(args))
    print(f"exported {len(m.branches)} branches to {m.folder} ({m.width}x{m.height}, paths {list(m.path_values)}, "
          f"{len(m.classes)} classes)")
    width = max(len(b.name) for b in m.branches)
    print(f"{'branch':<{width}} {'MMACs':>10} {'params':>10}")
    for b in m.branches:
        per = "  per tile" if b.kind == "region" and b.name.startswith("region_stage") else ""
        print(f"{b.name:<{width}} {b.macs / 1e6:>10.1f} {b.params:>10d}{per}")
    if m.extra.get("trained") is False:
        print(f"dynmm-edge export: warning: {m.folder} holds UNTRAINED random weights (manifest trained: false, "
              "default policy fixed:full); export a trained checkpoint for real use", file=sys.stderr)
    return 0
