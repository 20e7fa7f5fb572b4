"""Soak: N synthetic frames through the real run path (Session + Pipeline + sinks); RSS over time.

    OMP_NUM_THREADS=1 python scripts/soak.py --model demo --frames 10000 --size 64x64 \
        --json docs/results/soak.json

Samples the process RSS (from /proc/self/statm) every --every frames, from the output stage,
so memory growth per frame shows as a slope. Writes JSON first; the Markdown quote comes from it.
"""
import argparse
import json
import os
import platform
import time


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="demo")
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--size", default="64x64", help="synthetic frame size WxH")
    ap.add_argument("--every", type=int, default=250, help="RSS sample interval in frames")
    ap.add_argument("--sink", action="append", default=[], help="sinks (default null://)")
    ap.add_argument("--json", required=True)
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))

    from dynmm_edge.atomic import write_json
    from dynmm_edge.io.sinks import open_sinks
    from dynmm_edge.io.sources import open_source
    from dynmm_edge.runtime.pipeline import run_pipeline
    from dynmm_edge.models import open_session
    from dynmm_edge.runtime.summary import RunSummary

    session = open_session(args.model, backend="ort", backend_opts={"threads": 1})
    m = session.manifest
    summary = RunSummary(paths=m.path_values, full_depth_macs=m.depth_macs(m.full_path), num_classes=len(m.classes))
    samples = []
    t0 = time.perf_counter()

    def on_result(result):
        summary.add(result)
        if summary.frames % args.every == 0 or summary.frames == 1:
            samples.append({"frames": summary.frames, "t_s": round(time.perf_counter() - t0, 2),
                            "rss_mib": round(rss_mib(), 2)})

    source_uri = f"synthetic://?frames={args.frames}&width={w}&height={h}&motion=walk"
    with session, open_source(source_uri) as source:
        sinks = open_sinks(args.sink or ["null://"], palette=[tuple(c) for c in m.palette])
        stats = run_pipeline(source, session.infer, sinks, on_result=on_result)
        sinks.close()
    after_warmup = [s for s in samples if s["frames"] >= min(1000, args.frames // 2)]
    report = {
        "what": "soak: synthetic frames through Session + Pipeline + sinks (the `run` path), one process",
        "machine": f"{platform.machine()} {os.cpu_count()} cores shared, {platform.system()}, "
                   f"Python {platform.python_version()}, no GPU",
        "model": str(m.folder), "backend": session.describe(), "source": source_uri,
        "sinks": args.sink or ["null://"],
        "frames_requested": args.frames, "frames_in": stats.frames_in, "frames_out": stats.frames_out,
        "dropped": stats.dropped, "bad_frames": stats.bad_frames, "stop_reason": stats.stop_reason,
        "wall_s": round(stats.wall_s, 2), "fps": round(stats.fps, 2),
        "rss_mib_first": samples[0]["rss_mib"] if samples else None,
        "rss_mib_after_warmup": after_warmup[0]["rss_mib"] if after_warmup else None,
        "rss_mib_last": samples[-1]["rss_mib"] if samples else None,
        "rss_growth_after_warmup_mib": round(after_warmup[-1]["rss_mib"] - after_warmup[0]["rss_mib"], 2)
        if after_warmup else None,
        "path_histogram": summary.to_dict()["path_histogram"],
        "samples": samples,
    }
    write_json(args.json, report)
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=1))
    return 0 if stats.frames_out == args.frames and stats.dropped == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
