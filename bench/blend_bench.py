"""Blend-engine throughput and latency: batch 1 vs batched, with and without the style cache.

    .venv/bin/python bench/blend_bench.py                       # CPU, 64 px, random weights
    .venv/bin/python bench/blend_bench.py --device cuda --size 512 --jobs 64 --batch 16 \\
        --model vgg_normalised.pth,decoder.pth --precision fp16

Every job has its own content image; styles are drawn from ``--styles`` distinct images, the way
a queue sees a few popular paintings again and again. Each scenario runs all ``--jobs`` once to
warm up (and, with the cache on, to fill it), then ``--repeats`` timed rounds; the best round is
reported. "latency" is the mean time from handing a job in to getting its image back: in a
batch every job waits for the whole batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from consumer.engines.blend import BlendEngine, BlendItem, create_engine  # noqa: E402
from consumer.engines.style_cache import StyleCache  # noqa: E402
from stylequeue.config import EngineConfig, load  # noqa: E402
from stylequeue.params.blend import BlendParams  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    parser.add_argument("--size", type=int, default=64, help="output longest side (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=16, help="jobs per round (default: %(default)s)")
    parser.add_argument(
        "--batch", type=int, default=8, help="jobs per forward pass when batched (default: %(default)s)"
    )
    parser.add_argument("--styles", type=int, default=2, help="distinct style images (default: %(default)s)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed rounds per scenario (default: %(default)s)"
    )
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"))
    parser.add_argument("--model", default="", help="blend model spec (default: random weights)")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU intra-op threads (default: torch's choice)"
    )
    return parser.parse_args(argv)


def make_engine(args: argparse.Namespace) -> BlendEngine:
    config = dataclasses.replace(
        load(EngineConfig),
        device=args.device,
        precision=args.precision,
        blend_model=args.model,
        random_weights=not args.model,
        blend_max_batch=args.batch,
    )
    engine = create_engine(config)
    if not engine.availability().ok:
        raise SystemExit(f"blend engine unavailable: {engine.availability().reason}")
    return engine


def make_jobs(args: argparse.Namespace) -> list[BlendItem]:
    rng = np.random.default_rng(0)

    def image(_: int) -> Image.Image:
        grid = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        return Image.fromarray(grid, "RGB").resize((args.size, args.size * 3 // 4), Image.Resampling.BICUBIC)

    styles = [image(i) for i in range(args.styles)]
    params = BlendParams(ratio=0.5, image_size=args.size)
    return [
        BlendItem(image(i), [styles[i % len(styles)], styles[(i + 1) % len(styles)]], params)
        for i in range(args.jobs)
    ]


def run_round(engine: BlendEngine, jobs: list[BlendItem], batch: int) -> tuple[float, list[float]]:
    """Wall time of one round and each job's latency."""
    latencies, started = [], time.perf_counter()
    for first in range(0, len(jobs), batch):
        chunk = jobs[first : first + batch]
        t0 = time.perf_counter()
        results = engine.run_batch(chunk)
        latencies += [time.perf_counter() - t0] * len(chunk)
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            raise failed[0]
    return time.perf_counter() - started, latencies


def scenario(engine: BlendEngine, jobs: list[BlendItem], batch: int, cache: bool, repeats: int) -> dict:
    engine.cache = StyleCache(256 if cache else 0)
    run_round(engine, jobs, batch)  # warm-up: cuDNN autotuning, allocator, and the cache when on
    rounds = [run_round(engine, jobs, batch) for _ in range(repeats)]
    wall, latencies = min(rounds, key=lambda r: r[0])
    return {
        "batch": batch,
        "cache": cache,
        "images_per_s": len(jobs) / wall,
        "latency_ms": 1000 * statistics.mean(latencies),
        "hit_rate": engine.cache.hits / max(1, engine.cache.hits + engine.cache.misses),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    engine = make_engine(args)
    jobs = make_jobs(args)
    source = engine.model.source
    print(
        f"blend bench: device {engine.device}, precision {args.precision}, {args.size} px, "
        f"{args.jobs} jobs, {args.styles} distinct styles, {torch.get_num_threads()} CPU threads, model {source.kind}"
        f"{' (RANDOM WEIGHTS)' if source.random else ''}"
    )
    rows = [scenario(engine, jobs, b, c, args.repeats) for b in (1, args.batch) for c in (False, True)]
    print(f"{'batch':>5} {'cache':>5} {'images/s':>9} {'latency ms':>11} {'cache hits':>10}")
    for r in rows:
        print(f"{r['batch']:>5} {'on' if r['cache'] else 'off':>5} {r['images_per_s']:>9.2f} "
              f"{r['latency_ms']:>11.2f} {r['hit_rate']:>10.0%}")  # fmt: skip
    base = rows[0]["images_per_s"]
    print(f"batched/batch-1 throughput (cache off): {rows[2]['images_per_s'] / base:.2f}x")
    print(f"cache on/off throughput (batch 1): {rows[1]['images_per_s'] / base:.2f}x")
    print(f"batched + cache vs batch 1 without cache: {rows[3]['images_per_s'] / base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
