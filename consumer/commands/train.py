"""``stylequeue train-blend`` (train our own decoder) and ``stylequeue train-blend-data`` (fetch data).

``train-blend``'s flags and defaults are derived from
:class:`~consumer.training.trainer.TrainSettings`, so each default is written once.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from pathlib import Path
from typing import Any

HELP = {
    "content_dir": "folder of content images (e.g. COCO 2017 train)",
    "style_dir": "folder of style images (e.g. WikiArt)",
    "out": "where to write the trained artifact (our single-file format)",
    "encoder": "vgg_normalised.pth (path, s3:// or https URL); frozen during training",
    "random_encoder": "DEV/TEST ONLY: a seeded random encoder instead of --encoder",
    "decoder_init": "decoder.pth to fine-tune instead of training from scratch",
    "checkpoint": "checkpoint file (default: OUT with suffix .ckpt)",
    "steps": "total optimisation steps (a resumed run continues up to this)",
    "batch_size": "images per step (content and style each)",
    "lr": "Adam learning rate",
    "lr_decay": "learning-rate decay: lr / (1 + decay * step)",
    "content_weight": "weight of the content loss (relu4_1 vs the AdaIN target)",
    "style_weight": "weight of the style loss (mean/std at relu1_1..relu4_1)",
    "load_size": "shorter side images are resized to before cropping",
    "crop_size": "side of the random square crops (multiple of 8)",
    "checkpoint_every": "save a checkpoint every N steps",
    "seed": "seed of the decoder init and the image sampling",
    "device": "auto, cpu, cuda or cuda:N",
}
FLAG_NAMES = {"random_encoder": "--random-weights"}


def register(subparsers: Any) -> None:
    from consumer.training.data import COCO_TRAIN_URL, WIKIART_URL

    train = subparsers.add_parser("train-blend", help="train a blend decoder (AdaIN losses), resumable")
    add_settings_flags(train)
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint if it exists")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=run_train)

    data = subparsers.add_parser("train-blend-data", help="fetch COCO 2017 train + WikiArt subsets")
    data.add_argument("--coco", type=int, default=1000, help="content images to fetch (default: %(default)s)")
    data.add_argument(
        "--wikiart", type=int, default=1000, help="style images to fetch (default: %(default)s)"
    )
    data.add_argument("--out", type=Path, required=True, help="folder to write content/ and style/ into")
    data.add_argument(
        "--coco-url", default=COCO_TRAIN_URL, help="COCO train2017.zip URL or path (default: %(default)s)"
    )
    data.add_argument(
        "--wikiart-url", default=WIKIART_URL, help="wikiart.zip URL or path (default: %(default)s)"
    )
    data.add_argument("--seed", type=int, default=0, help="seed of the random sample (default: %(default)s)")
    data.set_defaults(func=run_data)


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    from consumer.training.settings import TrainSettings

    hints = typing.get_type_hints(TrainSettings)
    for f in dataclasses.fields(TrainSettings):
        flag = FLAG_NAMES.get(f.name, f"--{f.name.replace('_', '-')}")
        tp = _scalar(hints[f.name])
        required = f.default is dataclasses.MISSING
        default = None if required else f.default
        shown = not required and tp is not bool and default not in ("", None)
        help_text = HELP[f.name] + (f" (default: {default})" if shown else "")
        if tp is bool:
            parser.add_argument(flag, dest=f.name, action="store_true", help=help_text)
        else:
            parser.add_argument(
                flag, dest=f.name, type=tp, required=required, default=default, help=help_text
            )


def _scalar(tp: Any) -> Any:
    """``Path | None`` → ``Path``: the type argparse should convert to."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if args else tp


def run_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from consumer.commands.blend import s3_client_for
    from consumer.training.settings import TrainSettings
    from consumer.training.trainer import Trainer
    from stylequeue.config import EngineConfig, load

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainSettings)}
    settings = TrainSettings(**values)
    s3 = s3_client_for(f"{settings.encoder},{settings.decoder_init}")
    trainer = Trainer(settings, config=load(EngineConfig), s3=s3)
    bar = tqdm(total=trainer.settings.steps, disable=args.no_progress, file=sys.stderr, unit="step")

    def progress(step: int, losses: dict[str, float]) -> None:
        bar.n = step
        bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()}, refresh=False)
        bar.refresh()

    try:
        out = trainer.run(resume=args.resume, progress=progress)
    finally:
        bar.close()
    losses = ", ".join(f"{k} {v:.4g}" for k, v in trainer.last_losses.items())
    print(f"wrote {out} after {trainer.step} steps ({losses}); checkpoint {trainer.settings.checkpoint_path}")
    return 0


def run_data(args: argparse.Namespace) -> int:
    from consumer.training.data import bootstrap

    result = bootstrap(
        args.out,
        coco=args.coco,
        wikiart=args.wikiart,
        coco_url=args.coco_url,
        wikiart_url=args.wikiart_url,
        seed=args.seed,
    )
    print(f"{len(result['content'])} content and {len(result['style'])} style images in {args.out}")
    return 0
