"""``stylequeue gatys``: run the Gatys engine on local files, with a progress bar.

Accepts the flags of the seed CLI (the Kafka NST project's ``neural_style_transfer.py``) with their
meaning there: ``--height`` is the output's height, turned into the longest side (``--image_size``)
the engine sizes by once the content's shape is known. Every engine parameter's flag, help and
default come from :class:`~consumer.engines.gatys.GatysParams` (via :func:`stylequeue.params.describe`),
so no default is written here; the device and weight flags override the ``STYLEQUEUE_*`` environment
(:class:`~stylequeue.config.EngineConfig`). Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from consumer.commands.flags import add_model_flags, add_param_flags, flags_given, open_image
from consumer.engines import registry
from consumer.engines.gatys import GatysParams
from stylequeue.config import EngineConfig, load
from stylequeue.errors import ValidationError
from stylequeue.params import coerce, parse_params
from stylequeue.params.images import MAX_IMAGE_SIZE, MIN_SIDE, longest_for_height

# The seed script spelled its flags with hyphens (its README with underscores, as ours are): accept
# both. Its --saving-interval saved an image every N iterations, as --snapshot_every does.
HYPHENATED = "content_weight style_weight tv_weight init_method total_iterations learning_rate".split()
SEED_SPELLINGS = {name: [f"--{name.replace('_', '-')}"] for name in HYPHENATED}
SEED_SPELLINGS["snapshot_every"] = ["--saving-interval", "--saving_interval"]
HEIGHT_HELP = (
    "height of the output in pixels, aspect ratio kept: the seed CLI's --height (its default was 400). "
    "Without it the output's longest side is --image_size"
)
# EngineConfig fields with a flag; the flags' help is the fields' descriptions.
CONFIG_FLAGS = ("device", "precision", "vgg_format", "cache_dir", "random_weights")
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
    files.add_argument(
        "--content_image_path", "--content-image-path", required=True, type=Path, help="content image"
    )
    files.add_argument(
        "--style_image_path",
        "--style-image-path",
        required=True,
        nargs="+",
        help="style image(s); several, or comma-separated",
    )
    files.add_argument("--init_image", type=Path, help="starting image for --init_method image")
    files.add_argument(
        "--output_file",
        type=Path,
        default=Path("out.png"),
        help="where to write the result (default: out.png)",
    )
    files.add_argument(
        "--snapshot_dir",
        "--output-folder",
        "--output_folder",
        type=Path,
        help="write a snapshot every --snapshot_every iterations here (the seed's --output-folder)",
    )
    engine = parser.add_argument_group("engine parameters")
    engine.add_argument("--height", default=None, metavar="INT", help=HEIGHT_HELP)
    add_param_flags(engine, registry.params_class("gatys"), aliases=SEED_SPELLINGS)
    settings = parser.add_argument_group("device and weights (override STYLEQUEUE_*)")
    add_model_flags(settings, EngineConfig, CONFIG_FLAGS, separator="_", environment=True)
    settings.add_argument("--weights", help="VGG weights for --model: a path, s3:// or https URL")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def engine_config(args: argparse.Namespace, model: str) -> EngineConfig:
    """The environment's EngineConfig with this command's flags laid over it."""
    changes = flags_given(args, CONFIG_FLAGS)
    if args.weights:
        changes[f"{model}_weights"] = args.weights
    return load(EngineConfig).overlaid(changes)


def gatys_params(args: argparse.Namespace, content_size: tuple[int, int]) -> GatysParams:
    """The flags' parameters; ``--height`` becomes the ``image_size`` that gives the content that height."""
    model = registry.params_class("gatys")  # the registered module's model: one declaration
    values = flags_given(args, model.model_fields)
    if args.height is not None:
        values["image_size"] = image_size_for_height(args.height, content_size, values.get("image_size"))
    return parse_params(model, values)


def image_size_for_height(raw: str, content_size: tuple[int, int], image_size: Any) -> int:
    """The longest side at which the content comes out ``raw`` px high; errors name ``height``.

    Checked here rather than left to ``image_size``'s own bounds so the message names the flag the
    user typed and the width the height implies.
    """
    if image_size is not None:
        raise ValidationError("give --height or --image_size, not both", field="height")
    target = coerce("height", int, raw)
    longest = longest_for_height(*content_size, target) if target > 0 else 0
    if not MIN_SIDE <= longest <= MAX_IMAGE_SIZE:
        width, height = content_size
        raise ValidationError(
            f"{target} px high, the {width}x{height} content's longest side would be {longest} px; "
            f"it must be {MIN_SIDE} to {MAX_IMAGE_SIZE}",
            field="height",
        )
    return longest


def style_paths(values: list[str]) -> list[Path]:
    return [Path(p.strip()) for v in values for p in v.split(",") if p.strip()]


def run(args: argparse.Namespace) -> int:
    content = open_image(args.content_image_path, "content_image_path")
    params = gatys_params(args, content.size)
    styles = [open_image(p, "style_image_path") for p in style_paths(args.style_image_path)]
    params.check_styles(len(styles))
    init = open_image(args.init_image, "init_image") if args.init_image else None

    from consumer.engines.gatys_engine import create_engine  # torch loads here, not at --help

    config = engine_config(args, params.model)
    if config.random_weights:
        print(RANDOM_BANNER, file=sys.stderr)
    engine = create_engine(config)
    if args.snapshot_dir:
        args.snapshot_dir.mkdir(parents=True, exist_ok=True)
    result = _run_with_progress(engine, content, styles, params, init, args)
    args.output_file.parent.mkdir(parents=True, exist_ok=True)
    result.image.save(args.output_file)
    meta = result.meta
    last = result.history[-1] if result.history else {}
    print(
        f"wrote {args.output_file} ({result.image.width}x{result.image.height}) in {meta['elapsed_s']:.1f}s "
        f"({meta['ms_per_iteration']:.0f} ms/iteration on {meta['device']}, seed {meta['seed']}); "
        f"final loss {last.get('total', float('nan')):.4g}"
    )
    if config.random_weights:
        print(RANDOM_BANNER, file=sys.stderr)
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

    with bar:
        return engine.run(content, styles, params, Hooks(on_progress, on_snapshot), init_image=init)
