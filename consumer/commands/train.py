"""``stylequeue train-blend`` (train our own decoder) and ``stylequeue train-blend-data`` (fetch data).

``train-blend``'s flags and defaults are derived from
:class:`~consumer.training.settings.TrainSettings`'s fields (type, default, help), so each is written once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from consumer.commands.flags import add_model_flags

FLAG_NAMES = {"random_encoder": "--random-weights"}


def register(subparsers: Any) -> None:
    from consumer.training.data import COCO_TRAIN_URL, WIKIART_URL
    from consumer.training.settings import TrainSettings

    train = subparsers.add_parser("train-blend", help="train a blend decoder (AdaIN losses), resumable")
    add_model_flags(train, TrainSettings, flags=FLAG_NAMES)
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


def run_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from consumer.commands.blend import s3_client_for
    from consumer.training.settings import TrainSettings
    from consumer.training.trainer import Trainer
    from stylequeue.config import EngineConfig, load

    settings = TrainSettings(**{name: getattr(args, name) for name in TrainSettings.model_fields})
    s3 = s3_client_for(f"{settings.encoder},{settings.decoder_init}")
    trainer = Trainer(settings, config=load(EngineConfig), s3=s3)
    bar = tqdm(total=trainer.settings.steps, disable=args.no_progress, file=sys.stderr, unit="step")

    def progress(step: int, losses: dict[str, float]) -> None:
        bar.n = step
        bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()}, refresh=False)
        bar.refresh()

    with bar:
        out = trainer.run(resume=args.resume, progress=progress)
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
