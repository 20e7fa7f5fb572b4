"""`dynmm-edge train`: DynMM training (stage I random paths, stage II gate + resource loss, gate-only).

Launch several processes with `torchrun --nproc_per_node N -m dynmm_edge.apps.cli train ...`:
DDP is picked up from torchrun's environment (gloo on CPU, nccl on GPU).
"""
import argparse
import shlex
import sys

from dynmm_edge.apps.argtypes import (finite_float, non_negative_float, non_negative_int, positive_float, positive_int,
                                      unit_float)

EPILOG = """examples:
  dynmm-edge train --preset tiny-test --source 'synthetic://?frames=64' --epochs-stage1 1 --epochs-stage2 1 -o runs/t
  dynmm-edge train --preset demo --source data/synth --val-source 'synthetic://?frames=200&seed=2026' -o runs/demo
  dynmm-edge train --preset demo --init-from runs/demo/final.pt --epochs-stage1 0 --epochs-stage2 0 \\
      --epochs-gate 4 --budget 0.4 -o runs/gate          # retrofit only the gate
  torchrun --nproc_per_node 2 -m dynmm_edge.apps.cli train --preset demo -o runs/ddp
  dynmm-edge train --stage region --init-from demo -o runs/region   # region gate + tile depth stages
  dynmm-edge eval runs/demo/final.pt --source 'synthetic://?frames=200&seed=2026' --json eval.json
"""
DEFAULT_SOURCE = "synthetic://?frames=2000&hard_fraction=0.3&seed=0"
REGION_DEFAULT_SOURCE = "synthetic://?frames=720&hard_fraction=0.3&seed=11"  # train.region.RegionTrainConfig.data


def add_parser(subparsers) -> None:
    from dynmm_edge.apps.common import add_output, add_source, deprecated_alias
    p = subparsers.add_parser("train", help="train a DynMM model (synthetic world or a dataset folder)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=EPILOG)
    p.add_argument("--stage", choices=("dynmm", "region"), default="dynmm",
                   help="dynmm: stage I/II/gate training; region: add and train a region gate + tile depth "
                        "stages on a trained checkpoint (needs --init-from; see docs/REGIONS.md)")
    p.add_argument("--tile", type=positive_int, default=32, help="region stage: tile size in px (multiple of 32)")
    p.add_argument("--price", type=non_negative_float, default=0.0,
                   help="region stage: per-tile price in nats/pixel; the gate learns 'gain of depth > price' "
                        "(default 0: the price that --region-keep of the training tiles exceed)")
    p.add_argument("--region-keep", type=unit_float, default=0.35,
                   help="region stage: share of training tiles worth their depth MACs (sets the price)")
    p.add_argument("--region-epochs", type=positive_int, default=2, help="region stage: epochs of the tile stages")
    p.add_argument("--region-gate-epochs", type=positive_int, default=20,
                   help="region stage: epochs of the region gate (trained after the tile stages; cheap)")
    p.add_argument("--region-gate", choices=("cues", "raw"), default="cues",
                   help="region stage: the region gate reads frame-quality cue maps (default) or raw RGB-D")
    p.add_argument("--preset", default="demo", help="model preset (see dynmm_edge.model.presets)")
    add_source(p, help=f"training data: dataset folder or synthetic://?frames=N&hard_fraction=F&seed=S (default: "
                       f"{DEFAULT_SOURCE}; region stage: {REGION_DEFAULT_SOURCE})")
    p.add_argument("--val-source", default="", help="optional evaluation data, evaluated at each stage end")
    deprecated_alias(p, "--val-data", "--val-source", "val_source")
    p.add_argument("--epochs-stage1", type=non_negative_int, default=10, help="epochs with a random path per sample")
    p.add_argument("--epochs-stage2", type=non_negative_int, default=2, help="epochs with the gate trained jointly")
    p.add_argument("--epochs-gate", type=non_negative_int, default=0,
                   help="gate-only epochs after stage II (trunk frozen; cheap retrofit)")
    p.add_argument("--budget", type=unit_float, default=0.5,
                   help="target expected depth-encoder MACs as a fraction of the full-depth path")
    p.add_argument("--resource-lambda", type=non_negative_float, default=1.0, help="weight of the resource loss")
    add_output(p, required=True, help="run folder (state.pt, metrics.jsonl, final.pt)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT/state.pt")
    p.add_argument("--init-from", default="", help="start from a checkpoint (ours or ESANet/DynMM, imported)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=positive_int, default=None, help="default 16 (region stage: 8)")
    p.add_argument("--lr", type=positive_float, default=2e-3, help="peak LR of the one-cycle schedule (trunk)")
    p.add_argument("--gate-lr", type=positive_float, default=1e-2)
    p.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--no-class-weights", action="store_true")
    p.add_argument("--gumbel", action="store_true", help="Gumbel noise on gate logits in stage II")
    p.add_argument("--stage1-end-prob", type=float, default=0.0,
                   help="share of stage-I samples on path 0 / full depth (0 = uniform over paths)")
    p.add_argument("--gate-frame-loss", choices=("class_mean", "pixel_mean", "pixel_error"), default="class_mean",
                   help="per-frame loss of each path in the gate-only stage (pixel_error: share of wrong pixels)")
    p.add_argument("--gate-objective", choices=("expected", "price", "argmin"), default="expected",
                   help="gate-only stage: expected (frame loss + batch-mean budget hinge), price (each frame pays "
                        "loss + mu x cost), argmin (distil each frame's argmin of loss + mu x cost)")
    p.add_argument("--gate-mu", type=finite_float, default=-1.0,
                   help="price of depth per unit normalised cost for price/argmin; < 0: argmin picks mu so the "
                        "targets' mean cost equals --budget")
    p.add_argument("--gate-balance", type=unit_float, default=0.0,
                   help="argmin: weight each target path by frequency^-B (0 = plain CE, 0.5 = sqrt balancing)")
    p.add_argument("--gate-cues", action="store_true",
                   help="raw gate with frame-quality cues (brightness, noise, depth holes, depth/RGB edge "
                        "disagreement); with --init-from, replaces the checkpoint's gate")
    p.add_argument("--oracle-tolerance", type=float, default=0.0,
                   help="gate-only stage: distil the per-frame oracle (cheapest path whose frame loss is within "
                        "this of full depth) instead of the budgeted expected loss; 0 = off")
    p.add_argument("--eval-every", type=non_negative_int, default=0)
    p.add_argument("--threads", type=positive_int, default=2, help="torch.set_num_threads")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def config_from_args(args):
    from dynmm_edge.train.loop import TrainConfig

    return TrainConfig(
        preset=args.preset, data=args.source or DEFAULT_SOURCE, val_data=args.val_source, out=args.output,
        epochs_stage1=args.epochs_stage1, epochs_stage2=args.epochs_stage2, epochs_gate=args.epochs_gate,
        budget=args.budget, resource_lambda=args.resource_lambda, batch_size=args.batch_size or 16, lr=args.lr,
        gate_lr=args.gate_lr, optimizer=args.optimizer, augment=not args.no_augment,
        class_weighting=not args.no_class_weights, gumbel=args.gumbel, stage1_end_prob=args.stage1_end_prob,
        gate_frame_loss=args.gate_frame_loss, oracle_tolerance=args.oracle_tolerance,
        gate_objective=args.gate_objective, gate_mu=args.gate_mu, gate_balance=args.gate_balance,
        gate_cues=args.gate_cues, seed=args.seed, threads=args.threads,
        resume=args.resume, init_from=args.init_from, eval_every=args.eval_every,
        progress=not args.no_progress, command="dynmm-edge " + " ".join(shlex.quote(a) for a in sys.argv[1:]))


def run(args) -> int:
    from dynmm_edge.errors import DynMMError
    from dynmm_edge.train.loop import train

    if args.stage == "region":
        return run_region(args)
    try:
        cfg = config_from_args(args)
        result = train(cfg)
    except (DynMMError, ValueError) as exc:
        print(f"dynmm-edge train: error: {exc}", file=sys.stderr)
        return 2
    if result["dist"].is_main:
        print(f"final checkpoint: {result['final']}")
        print(f"metrics: {result['metrics']}")
    return 0


def run_region(args) -> int:
    """--stage region: one command from a trained checkpoint to a checkpoint with a region gate."""
    from dynmm_edge.errors import DynMMError
    from dynmm_edge.train.region import RegionTrainConfig, train_region

    try:
        extra = {"data": args.source} if args.source else {}
        cfg = RegionTrainConfig(init_from=args.init_from, out=args.output, tile=args.tile, price=args.price,
                                keep=args.region_keep, epochs=args.region_epochs,
                                gate_epochs=args.region_gate_epochs, gate_cues=args.region_gate == "cues",
                                batch_size=args.batch_size or 8,
                                seed=args.seed, threads=args.threads, progress=not args.no_progress, **extra)
        result = train_region(cfg)
    except (DynMMError, ValueError) as exc:
        print(f"dynmm-edge train: error: {exc}", file=sys.stderr)
        return 2
    print(f"region stage: {result['steps']} steps in {result['seconds']:.0f} s; price {result['price']:.3f} "
          f"nats/pixel, kept by {result['keep_share_mean']:.0%} of the training tiles")
    print(f"final checkpoint: {result['final']}")
    return 0
