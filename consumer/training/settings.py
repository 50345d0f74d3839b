"""Settings of a ``train-blend`` run: torch-free, so the CLI derives its flags without importing torch."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stylequeue.errors import ValidationError


@dataclass(frozen=True)
class TrainSettings:
    """Everything a training run depends on; defaults follow the AdaIN paper's reference training."""

    content_dir: Path
    style_dir: Path
    out: Path
    encoder: str = ""  # vgg_normalised.pth: path, s3:// or https URL
    random_encoder: bool = False  # DEV/TEST ONLY: seeded random encoder instead of a file
    decoder_init: str = ""  # optional decoder.pth to fine-tune instead of starting from scratch
    checkpoint: Path | None = None  # default: OUT with suffix .ckpt
    steps: int = 160_000
    batch_size: int = 8
    lr: float = 1e-4
    lr_decay: float = 5e-5  # lr / (1 + decay · step)
    content_weight: float = 1.0
    style_weight: float = 10.0
    load_size: int = 512
    crop_size: int = 256
    checkpoint_every: int = 1000
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "load_size", "crop_size"):
            if getattr(self, name) < 1:
                raise ValidationError(f"must be at least 1, got {getattr(self, name)}", field=name)
        for name in ("lr", "lr_decay", "content_weight", "style_weight"):
            if not getattr(self, name) >= 0:
                raise ValidationError(f"must be >= 0, got {getattr(self, name)}", field=name)
        if self.crop_size % 8:
            raise ValidationError(
                f"must be a multiple of 8 (three 2× poolings), got {self.crop_size}", field="crop_size"
            )
        if not self.encoder and not self.random_encoder:
            raise ValidationError(
                "give the vgg_normalised.pth location (or --random-weights)", field="encoder"
            )

    @property
    def checkpoint_path(self) -> Path:
        return self.checkpoint or Path(self.out).with_suffix(".ckpt")

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()}
