"""`dynmm-edge run MODEL --source URI --sink URI ...`: live or offline RGB-D segmentation."""
import argparse

from dynmm_edge.apps.argtypes import non_negative_float, positive_int, unit_float


EPILOG = """examples:
  dynmm-edge run demo --source realsense://?filters=spatial,temporal --sink display://
  dynmm-edge run models/r34 --source walk.db3 --sink out.mp4 --sink jsonl://stats.jsonl --backend trt
  dynmm-edge run demo --source synthetic://?frames=100 --policy budget:0.4 --sink null://
policies: argmax (gate's choice), bias:B (B>0 saves compute), hysteresis:M[+bias:B] (no flicker),
          fixed:full | fixed:rgb | fixed:N, budget:F (hold mean depth cost at F of full), budget-ms:MS
"""


def add_common_runtime_args(p) -> None:
    p.add_argument("--backend", default="ort", choices=["ort", "torch", "trt"], help="inference backend (default ort)")
    p.add_argument("--precision", default=None,
                   help="fp32 | fp16 | int8 | per kind/branch, e.g. gate=fp16,depth=int8,trunk=fp16")
    p.add_argument("--device", default=None, help="torch backend device, e.g. cuda (default cpu)")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for ort/torch")
    p.add_argument("--policy", default=None, help="gate policy (default: argmax, or the model's default)")
    p.add_argument("--cuda-graphs", action="store_true", help="torch backend on CUDA: capture each branch as a CUDA graph")


def backend_options(args) -> dict:
    opts = {}
    if args.backend in ("ort", "torch") and args.threads:
        opts["threads"] = args.threads
    if args.backend == "torch":
        opts["device"] = args.device or "cpu"
        if (args.precision or "") == "fp16":
            opts["fp16"] = True
        if getattr(args, "cuda_graphs", False):
            opts["cuda_graphs"] = True
    return opts


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="segment a camera, recording, folder or synthetic stream",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    from dynmm_edge.apps.common import add_json, add_model, add_source
    add_model(p)
    add_source(p, required=True, old=())
    p.add_argument("--sink", action="append", default=[], help="display://, out.mp4, png://DIR, jsonl://F, null:// "
                                                               "(repeatable; default null://)")
    add_common_runtime_args(p)
    p.add_argument("--max-frames", type=positive_int, default=None, help="stop after N frames")
    p.add_argument("--queue", type=positive_int, default=4, help="pipeline queue size (live sources drop the oldest)")
    p.add_argument("--alpha", type=unit_float, default=0.5, help="overlay opacity")
    p.add_argument("--on-bad-frame", choices=("skip", "stop"), default="skip",
                   help="an unreadable frame is skipped and counted (default) or ends the run after the "
                        "frames already read are written")
    add_json(p, help="write the run summary here", old=("--summary-json",))
    p.add_argument("--progress-every", type=non_negative_float, default=5.0,
                   help="seconds between progress lines when stderr is not a terminal (default 5; 0 = every frame)")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def run_model(args, source_uri, sink_uris, max_frames=None, say=print) -> dict:
    """Shared by run and demo: source -> session -> sinks; returns the summary dict."""
    from dynmm_edge.io.sinks import open_sinks
    from dynmm_edge.io.sources import open_source
    from dynmm_edge.models import open_session
    from dynmm_edge.runtime.summary import RunSummary

    session = open_session(args.model, backend=args.backend, precision=args.precision, policy=args.policy,
                           backend_opts=backend_options(args), progress=lambda m: say(f"  {m}"))
    m = session.manifest
    summary = RunSummary(paths=m.path_values, full_depth_macs=m.depth_macs(m.full_path), num_classes=len(m.classes),
                         class_names=tuple(m.classes))
    with session, open_source(source_uri) as source:
        sink_uris = list(sink_uris or ["null://"]) + _progress_sinks(args, source, max_frames)
        sinks = open_sinks(sink_uris, palette=[tuple(c) for c in m.palette],
                           class_names=list(m.classes), alpha=getattr(args, "alpha", 0.5))
        stats, error = _run_stages(source, session, sinks, args, max_frames, summary)
    d = summary.to_dict()
    d.update(model=str(m.folder), backend=session.describe(), frames_in=stats.frames_in, dropped=stats.dropped,
             bad_frames=stats.bad_frames, wall_s=stats.wall_s, fps=stats.fps, stop_reason=stats.stop_reason,
             exit_code=exit_code(stats))
    if error is not None:
        d["error"] = str(error)
    return d


def _run_stages(source, session, sinks, args, max_frames, summary):
    """The pipeline, then the sinks finalised: closed (whole files) when every frame that reached
    them is valid, aborted when writing or inference failed or the source failed before any
    frame. Returns (stats, error or None)."""
    from dynmm_edge.runtime.pipeline import PipelineStageError, run_pipeline
    from dynmm_edge.signals import deferred
    try:
        stats = run_pipeline(source, session.infer, sinks, queue_size=getattr(args, "queue", 4),
                             max_frames=max_frames, on_result=summary.add,
                             on_bad_frame=getattr(args, "on_bad_frame", "skip"))
        error = None
    except PipelineStageError as exc:
        if exc.stage != "capture" or exc.stats is None:
            sinks.abort()
            raise
        stats, error = exc.stats, exc  # the source failed: frames already read were written
    except BaseException:
        sinks.abort()
        raise
    with deferred():  # a second signal waits until the files are whole
        if error is not None and stats.frames_out == 0:
            sinks.abort()  # the source failed before any frame: no empty output, an old file stays
        else:
            sinks.close()
    return stats, error


def exit_code(stats) -> int:
    """0 only when the source ended or the frame limit was reached; 128 + signal when stopped by one."""
    if stats.stop_reason == "interrupted":
        return 128 + int(stats.signal or 2)
    return 0 if stats.completed or stats.stop_reason in ("sink", "stop_event") else 1


def _progress_sinks(args, source, max_frames) -> list:
    """The progress reporter (frames, FPS, depth share, ETA) unless --quiet."""
    if getattr(args, "quiet", False):
        return []
    from dynmm_edge.io.progress import ProgressSink, source_length
    total = source_length(source)
    if max_frames:
        total = min(total, max_frames) if total else None
    return [ProgressSink(total=total, every_s=getattr(args, "progress_every", 5.0))]


def print_summary(d: dict, say=print) -> None:
    say(f"frames: {d['frames']} (dropped {d['dropped']}, stop: {d['stop_reason']})  "
        f"pipeline FPS: {d['fps']:.1f}  mean latency: {d['latency_ms_mean'] or 0:.1f} ms")
    say(f"depth skipped: {100 * (d['depth_skip_share'] or 0):.1f}% of depth-encoder MACs; "
        f"frames without any depth: {100 * (d['frames_without_depth'] or 0):.1f}%")
    say("paths: " + ", ".join(f"{k}:{v}" for k, v in d["path_histogram"].items())
        + "   branch calls: " + ", ".join(f"{k}={v}" for k, v in d["branch_calls"].items()))
    if d.get("miou") is not None:
        say(f"mIoU vs labels: {100 * d['miou']:.1f}%   pixel accuracy: {100 * d['pixel_acc']:.1f}%")


def run(args) -> int:
    import sys
    d = run_model(args, args.source, args.sink, max_frames=args.max_frames)
    print_summary(d)
    if args.json:
        from dynmm_edge.atomic import write_json
        from dynmm_edge.signals import deferred
        with deferred():
            write_json(args.json, d)
    if d.get("error"):
        print(f"dynmm-edge run: error: {d['error']} (the {d['frames']} frames before it were written)",
              file=sys.stderr)
    elif d["exit_code"] > 128:
        print(f"dynmm-edge run: interrupted after {d['frames']} frames; outputs and summary are complete "
              f"up to there", file=sys.stderr)
    return d["exit_code"]
