"""Folders of training images, sampled as random crops (no torchvision: plain PIL and torch)."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError

from consumer.engines.image import to_tensor
from consumer.training.data import IMAGE_SUFFIXES
from stylequeue.errors import ValidationError


class ImageFolder:
    """Every image under ``root`` (recursively); :meth:`batch` draws random crops as the AdaIN paper's
    training does: each image resized so its shorter side is ``load_size``, a ``crop_size`` square cut."""

    def __init__(self, root: Path, *, field: str, load_size: int, crop_size: int) -> None:
        root = Path(root)
        if not root.is_dir():
            raise ValidationError(f"not a directory: {root}", field=field)
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise ValidationError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {root}", field=field)
        if crop_size > load_size:
            raise ValidationError(f"crop size {crop_size} exceeds load size {load_size}", field="crop_size")
        self.root, self.field = root, field
        self.load_size, self.crop_size = load_size, crop_size

    def __len__(self) -> int:
        return len(self.files)

    def batch(self, size: int, generator: torch.Generator) -> torch.Tensor:
        """``size`` random crops, B×3×crop×crop in [0, 1], drawn with ``generator``."""
        picks = torch.randint(len(self.files), (size,), generator=generator).tolist()
        return torch.cat([self._crop(self.files[i], generator) for i in picks])

    def _crop(self, path: Path, generator: torch.Generator) -> torch.Tensor:
        try:
            with Image.open(path) as image:
                image = self._resize_short(image.convert("RGB"))
        except (OSError, UnidentifiedImageError) as exc:
            raise ValidationError(f"unreadable image {path} ({exc})", field=self.field) from exc
        left = int(torch.randint(image.width - self.crop_size + 1, (1,), generator=generator))
        top = int(torch.randint(image.height - self.crop_size + 1, (1,), generator=generator))
        return to_tensor(image.crop((left, top, left + self.crop_size, top + self.crop_size)))

    def _resize_short(self, image: Image.Image) -> Image.Image:
        scale = self.load_size / min(image.size)
        size = tuple(max(self.crop_size, round(side * scale)) for side in image.size)
        return image.resize(size, Image.Resampling.BILINEAR)
