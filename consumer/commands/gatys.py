"""``stylequeue gatys``: run the Gatys engine on local files, with a progress bar.

Accepts the seed CLI's flag names (``--content_image_path``, ``--style_image_path``,
``--content_weight`` … ``--height``, ``--output_file``). Every engine parameter's flag, help and
default come from :class:`~stylequeue.params.gatys.GatysParams` (via
:func:`stylequeue.params.describe`), so no default is written here; the device and weight flags
override the ``STYLEQUEUE_*`` environment (:class:`~stylequeue.config.EngineConfig`).
Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from consumer.commands.flags import add_param_flags, open_image, param_values
from stylequeue import config as config_mod
from stylequeue.config import EngineConfig
from stylequeue.errors import ValidationError
from stylequeue.params import parse_params
from stylequeue.params.gatys import GatysParams

# The seed CLI called the output size --height; it means the longest side here (--image_size).
ALIASES = {"image_size": ["--height"]}
# Flags for EngineConfig fields: flag → (field, help).
CONFIG_FLAGS = {
    "--device": ("device", "auto (CUDA when present), cpu, cuda or cuda:N"),
    "--precision": ("precision", "fp32, or fp16/bf16 mixed precision on CUDA"),
    "--vgg_format": ("vgg_format", "torchvision, caffe or adain: the layout of the weights file"),
    "--cache_dir": ("cache_dir", "where downloaded weights are kept"),
}
RANDOM_BANNER = (
    "!!! RANDOM WEIGHTS: the network is randomly initialised (STYLEQUEUE_RANDOM_WEIGHTS / "
    "--random_weights). The output is NOT style transfer; use this for development only. !!!"
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gatys",
        help="Gatys optimisation on local files",
        description="Optimise an image so that its VGG features match the content and its Gram "
        "matrices match the style(s) (Gatys et al.). Defaults come from the engine's parameters.",
    )
    files = parser.add_argument_group("files")
    files.add_argument("--content_image_path", required=True, type=Path, help="content image")
    files.add_argument(
        "--style_image_path", required=True, nargs="+", help="style image(s); several, or comma-separated"
    )
    files.add_argument("--init_image", type=Path, help="starting image for --init_method image")
    files.add_argument(
        "--output_file",
        type=Path,
        default=Path("out.png"),
        help="where to write the result (default: out.png)",
    )
    files.add_argument(
        "--snapshot_dir", type=Path, help="write a snapshot every --snapshot_every iterations here"
    )
    add_param_flags(parser.add_argument_group("engine parameters"), GatysParams, aliases=ALIASES)
    _add_config_flags(parser.add_argument_group("device and weights (override STYLEQUEUE_*)"))
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _add_config_flags(group: argparse._ArgumentGroup) -> None:
    for flag, (field, text) in CONFIG_FLAGS.items():
        group.add_argument(flag, dest=field, default=None, help=text)
    group.add_argument("--weights", help="VGG weights for --model: a path, s3:// or https URL")
    group.add_argument(
        "--random_weights", action="store_true", help="DEV ONLY: a randomly initialised network"
    )


def engine_config(args: argparse.Namespace, model: str) -> EngineConfig:
    """The environment's EngineConfig with this command's flags laid over it."""
    base = config_mod.load(EngineConfig)
    changes: dict[str, Any] = {}
    for field, _ in CONFIG_FLAGS.values():
        value = getattr(args, field)
        if value is not None:
            changes[field] = Path(value) if field == "cache_dir" else value
    if args.weights:
        changes[f"{model}_weights"] = args.weights
    if args.random_weights:
        changes["random_weights"] = True
    _check_choices(changes)
    return dataclasses.replace(base, **changes)


def _check_choices(changes: dict[str, Any]) -> None:
    for f in dataclasses.fields(EngineConfig):
        choices = f.metadata.get("choices")
        if f.name in changes and choices and changes[f.name] not in choices:
            raise ValidationError(
                f"must be one of {', '.join(choices)}; got {changes[f.name]!r}", field=f.name
            )


def gatys_params(args: argparse.Namespace) -> GatysParams:
    return parse_params(GatysParams, param_values(args, GatysParams))


def style_paths(values: list[str]) -> list[Path]:
    return [Path(p.strip()) for v in values for p in v.split(",") if p.strip()]


def run(args: argparse.Namespace) -> int:
    params = gatys_params(args)
    content = open_image(args.content_image_path, "content_image_path")
    styles = [open_image(p, "style_image_path") for p in style_paths(args.style_image_path)]
    params.check_styles(len(styles))
    init = open_image(args.init_image, "init_image") if args.init_image else None

    from consumer.engines.gatys import create_engine  # torch loads here, not at --help

    config = engine_config(args, params.model)
    if config.random_weights:
        print(RANDOM_BANNER, file=sys.stderr)
    engine = create_engine(config)
    if args.snapshot_dir:
        args.snapshot_dir.mkdir(parents=True, exist_ok=True)
    result = _run_with_progress(engine, content, styles, params, init, args)
    args.output_file.parent.mkdir(parents=True, exist_ok=True)
    result.image.save(args.output_file)
    _summary(result, args.output_file, config.random_weights)
    return 0


def _run_with_progress(engine, content, styles, params, init, args):
    from tqdm import tqdm

    from consumer.engines.base import Hooks

    bar = tqdm(total=params.total_iterations, unit="it", disable=args.quiet, file=sys.stderr)

    def on_progress(p) -> None:
        bar.set_postfix_str(
            f"{p.size[0]}x{p.size[1]} content {p.losses['content']:.3g} style {p.losses['style']:.3g} "
            f"tv {p.losses['tv']:.3g}"
        )
        bar.update(1)

    def on_snapshot(iteration: int, image) -> None:
        if args.snapshot_dir:
            image.save(args.snapshot_dir / f"{iteration:06d}.png")

    try:
        return engine.run(content, styles, params, Hooks(on_progress, on_snapshot), init_image=init)
    finally:
        bar.close()


def _summary(result, output: Path, random_weights: bool) -> None:
    meta = result.meta
    last = result.history[-1] if result.history else {}
    print(
        f"wrote {output} ({result.image.width}x{result.image.height}) in {meta['elapsed_s']:.1f}s "
        f"({meta['ms_per_iteration']:.0f} ms/iteration on {meta['device']}, seed {meta['seed']}); "
        f"final loss {last.get('total', float('nan')):.4g}"
    )
    if random_weights:
        print(RANDOM_BANNER, file=sys.stderr)
