"""``stylequeue blend``: one feed-forward dual-style blend from the command line.

The parameter flags (``--ratio``, ``--alpha``, ``--preserve-colors``, ``--size`` …) and their
defaults come from :class:`~consumer.engines.blend.BlendParams`, and their values are checked by
the same code the API uses, so a bad value fails here with the field's name.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from consumer.commands.flags import add_model_flags, add_param_flags, flags_given, open_image
from consumer.engines.blend import BlendParams
from stylequeue.config import EngineConfig, load

# Extra spellings: the issue's `--size` and the singular `--preserve-color`.
ALIASES = {"image_size": ["--size"], "preserve_colors": ["--preserve-color"]}
CONFIG_FLAGS = ("random_weights", "device")  # EngineConfig fields with a flag


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "blend",
        help="feed-forward (AdaIN) blend of one or two styles onto a content image",
        description="Stylize CONTENT with one or two styles in one encoder/decoder pass.",
    )
    parser.add_argument("--content", required=True, type=Path, help="content image")
    parser.add_argument("--style", required=True, type=Path, help="first style image")
    parser.add_argument("--style2", type=Path, help="second style image (blended by --ratio)")
    add_param_flags(
        parser.add_argument_group("blend parameters"), BlendParams, separator="-", aliases=ALIASES
    )
    parser.add_argument(
        "--output", "-o", type=Path, default=Path("blend.png"), help="output image (default: %(default)s)"
    )
    parser.add_argument(
        "--model",
        help="blend model: our .pt, a TorchScript file, or 'vgg_normalised.pth,decoder.pth'; "
        "path, s3:// or https URL (default: STYLEQUEUE_BLEND_MODEL)",
    )
    add_model_flags(parser, EngineConfig, CONFIG_FLAGS, environment=True)
    parser.set_defaults(func=run)


def engine_config(args: argparse.Namespace) -> Any:
    """EngineConfig from the environment, overridden by ``--model``, ``--random-weights``, ``--device``."""
    changes: dict[str, Any] = {"blend_model": args.model, "random_weights": False} if args.model else {}
    return load(EngineConfig).overlaid({**changes, **flags_given(args, CONFIG_FLAGS)})


def s3_client_for(spec: str) -> Any:
    """An S3 client (from ``STYLEQUEUE_S3_*``) when the model lives in S3, else None."""
    from stylequeue.storage import s3_client_from_env

    return s3_client_from_env() if "s3://" in spec else None


def run(args: argparse.Namespace) -> int:
    from consumer.engines.blend_engine import create_engine
    from consumer.engines.registry import validate_job_params
    from stylequeue.errors import EngineUnavailable

    styles = [args.style] + ([args.style2] if args.style2 else [])
    params = validate_job_params("blend", flags_given(args, BlendParams.model_fields), len(styles))
    content = open_image(args.content, "content")
    style_images = [open_image(p, f) for p, f in zip(styles, ("style", "style2"), strict=False)]
    config = engine_config(args)
    engine = create_engine(config, s3=s3_client_for(config.blend_model))
    availability = engine.availability()
    if not availability.ok:
        raise EngineUnavailable(f"blend engine unavailable: {availability.reason}")
    started = time.perf_counter()
    result = engine.run(content, style_images, params)
    elapsed = time.perf_counter() - started
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result.image.save(args.output)
    warning = " — RANDOM WEIGHTS (dev/test only)" if result.meta["random_weights"] else ""
    print(
        f"wrote {args.output} ({result.image.width}x{result.image.height}) in {elapsed:.3f}s "
        f"on {result.meta['device']} with {result.meta['model']} model{warning}"
    )
    return 0
