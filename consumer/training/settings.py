"""Settings of a ``train-blend`` run: one pydantic model holds each setting's type, default, range
and help, torch-free so that the CLI (:mod:`consumer.commands.train`) derives its flags from it
without importing torch. Errors are :class:`~stylequeue.errors.ValidationError` naming the setting,
in the parameters' words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stylequeue.errors import ValidationError
from stylequeue.params import translate


class TrainSettings(BaseModel):
    """Everything a training run depends on; defaults follow the AdaIN paper's reference training."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    content_dir: Path = Field(description="folder of content images (e.g. COCO 2017 train)")
    style_dir: Path = Field(description="folder of style images (e.g. WikiArt)")
    out: Path = Field(description="where to write the trained artifact (our single-file format)")
    encoder: str = Field(
        "", description="vgg_normalised.pth (path, s3:// or https URL); frozen during training"
    )
    random_encoder: bool = Field(
        False, description="DEV/TEST ONLY: a seeded random encoder instead of --encoder"
    )
    decoder_init: str = Field("", description="decoder.pth to fine-tune instead of training from scratch")
    checkpoint: Path | None = Field(None, description="checkpoint file (default: OUT with suffix .ckpt)")
    steps: int = Field(
        160_000, ge=1, description="total optimisation steps (a resumed run continues up to this)"
    )
    batch_size: int = Field(8, ge=1, description="images per step (content and style each)")
    lr: float = Field(1e-4, ge=0, description="Adam learning rate")
    lr_decay: float = Field(5e-5, ge=0, description="learning-rate decay: lr / (1 + decay * step)")
    content_weight: float = Field(
        1.0, ge=0, description="weight of the content loss (relu4_1 vs the AdaIN target)"
    )
    style_weight: float = Field(
        10.0, ge=0, description="weight of the style loss (mean/std at relu1_1..relu4_1)"
    )
    load_size: int = Field(512, ge=1, description="shorter side images are resized to before cropping")
    crop_size: int = Field(256, ge=1, description="side of the random square crops (multiple of 8)")
    checkpoint_every: int = Field(1000, ge=1, description="save a checkpoint every N steps")
    seed: int = Field(0, description="seed of the decoder init and the image sampling")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except pydantic.ValidationError as exc:
            raise translate(exc, type(self)) from None

    @field_validator("crop_size")
    @classmethod
    def _poolable(cls, value: int) -> int:
        if value % 8:  # the encoder pools three times by 2
            raise ValidationError(
                f"must be a multiple of 8 (three 2× poolings), got {value}", field="crop_size"
            )
        return value

    @model_validator(mode="after")
    def _has_encoder(self) -> TrainSettings:
        if not self.encoder and not self.random_encoder:
            raise ValidationError(
                "give the vgg_normalised.pth location (or --random-weights)", field="encoder"
            )
        return self

    @property
    def checkpoint_path(self) -> Path:
        return self.checkpoint or Path(self.out).with_suffix(".ckpt")
