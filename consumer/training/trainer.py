"""Training a blend decoder with the AdaIN paper's losses (Huang & Belongie, 2017, §6).

The encoder (vgg_normalised up to relu4_1) is frozen. For a content batch ``c`` and a style
batch ``s``: ``t = AdaIN(f(c), f(s))``, ``g = decoder(t)``, and

* content loss ``‖f(g) − t‖²`` at relu4_1 — against the AdaIN target, not the content features;
* style loss ``Σₗ ‖μ(φₗ(g)) − μ(φₗ(s))‖² + ‖σ(φₗ(g)) − σ(φₗ(s))‖²`` over relu1_1 … relu4_1.

Checkpoints hold the decoder, the optimiser, the step and the sampling RNG, so a resumed run
continues exactly where it stopped (the same images, the same updates).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from consumer.engines import device as devices
from consumer.engines.adain import (
    AdaINNet,
    adain,
    build_decoder,
    build_encoder,
    mean_std,
    style_layer_indices,
)
from consumer.engines.blend_model import DECODER_FILE, ENCODER_FILE, load_modules, random_model, save_artifact
from consumer.engines.catalogue import cached_path, entry
from consumer.engines.vgg import read_state_dict
from consumer.training.dataset import ImageFolder
from consumer.training.settings import TrainSettings
from stylequeue import artifact
from stylequeue.config import EngineConfig
from stylequeue.errors import ArtifactError

log = logging.getLogger(__name__)
CHECKPOINT_VERSION = 1


class Trainer:
    """One training run: frozen encoder, trainable decoder, Adam, two image folders."""

    def __init__(
        self, settings: TrainSettings, *, config: EngineConfig | None = None, s3: Any | None = None
    ) -> None:
        self.settings = settings
        self.config = config or EngineConfig()
        self.device = devices.select_device(settings.device)
        folder = functools.partial(ImageFolder, load_size=settings.load_size, crop_size=settings.crop_size)
        self.content = folder(settings.content_dir, field="content_dir")
        self.style = folder(settings.style_dir, field="style_dir")
        torch.manual_seed(settings.seed)
        self.encoder = self._encoder(s3).to(self.device).eval().requires_grad_(False)
        self.decoder = self._decoder(s3).to(self.device).train()
        self.optimizer = torch.optim.Adam(self.decoder.parameters(), lr=settings.lr)
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.taps = style_layer_indices()
        self.step = 0
        self.last_losses: dict[str, float] = {}

    def _encoder(self, s3: Any | None) -> nn.Sequential:
        if self.settings.random_encoder:
            log.warning("training against a RANDOM encoder: the artifact is for tests only")
            return random_model().module.encoder
        path = self._resolve(self.settings.encoder, s3, "adain-encoder")
        return load_modules(build_encoder(), read_state_dict(path), path.name, ENCODER_FILE)

    def _decoder(self, s3: Any | None) -> nn.Sequential:
        decoder = build_decoder()
        if self.settings.decoder_init:
            path = self._resolve(self.settings.decoder_init, s3, "adain-decoder")
            load_modules(decoder, read_state_dict(path), path.name, DECODER_FILE)
        return decoder.requires_grad_(True)

    def _resolve(self, uri: str, s3: Any | None, name: str) -> Path:
        """``uri`` as a local file; when missing, the error names the catalogue entry to pull."""
        item = entry(name)
        how = f"Run '{item.pull_command}' and give its path, {cached_path(item, self.config.cache_dir)}."
        return artifact.resolve(uri, cache_dir=self.config.cache_dir, s3=s3, how_to_get=how)

    def taps_of(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        """Encoder activations at relu1_1, relu2_1, relu3_1, relu4_1."""
        feats = []
        for index, module in enumerate(self.encoder):
            rgb = module(rgb)
            if index in self.taps:
                feats.append(rgb)
        return feats

    def losses(self, content: torch.Tensor, style: torch.Tensor) -> dict[str, torch.Tensor]:
        style_feats = self.taps_of(style)
        target = adain(self.encoder(content), *mean_std(style_feats[-1]))
        out_feats = self.taps_of(self.decoder(target))
        content_loss = F.mse_loss(out_feats[-1], target)
        style_loss = sum(
            F.mse_loss(mo, ms) + F.mse_loss(so, ss)
            for (mo, so), (ms, ss) in zip(map(mean_std, out_feats), map(mean_std, style_feats), strict=True)
        )
        s = self.settings
        total = s.content_weight * content_loss + s.style_weight * style_loss
        return {"loss": total, "content": content_loss, "style": style_loss}

    def train_step(self) -> dict[str, float]:
        s = self.settings
        for group in self.optimizer.param_groups:
            group["lr"] = s.lr / (1.0 + s.lr_decay * self.step)
        fmt = devices.memory_format(self.device)
        content = self.content.batch(s.batch_size, self.generator).to(self.device, memory_format=fmt)
        style = self.style.batch(s.batch_size, self.generator).to(self.device, memory_format=fmt)
        losses = self.losses(content, style)
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        self.optimizer.step()
        self.step += 1
        self.last_losses = {k: float(v.detach()) for k, v in losses.items()}
        return self.last_losses

    def save_checkpoint(self) -> Path:
        path = self.settings.checkpoint_path
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "version": CHECKPOINT_VERSION,
            "step": self.step,
            "decoder": self.decoder.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "losses": self.last_losses,
            "settings": self.settings.model_dump(mode="json"),
        }
        tmp = path.with_name(f".{path.name}.part")
        torch.save(state, tmp)
        tmp.replace(path)  # never leave a half-written checkpoint under the real name
        return path

    def load_checkpoint(self, path: Path | None = None) -> int:
        """Restore decoder, optimiser, step and RNG from ``path``; returns the step reached."""
        path = path or self.settings.checkpoint_path
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
            self.decoder.load_state_dict(state["decoder"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(state["generator"])
            self.step, self.last_losses = int(state["step"]), dict(state["losses"])
        except Exception as exc:  # pickle, zip, key and shape errors all mean "not our checkpoint"
            raise ArtifactError(f"{path}: not a usable train-blend checkpoint ({exc})") from exc
        log.info("resumed from %s at step %d", path, self.step)
        return self.step

    def run(
        self, *, resume: bool = False, progress: Callable[[int, dict[str, float]], None] | None = None
    ) -> Path:
        """Train to ``settings.steps`` (from the checkpoint when ``resume`` and one exists); write the artifact."""
        if resume and self.settings.checkpoint_path.is_file():
            self.load_checkpoint()
        started, first = time.perf_counter(), self.step
        while self.step < self.settings.steps:
            losses = self.train_step()
            if progress is not None:
                progress(self.step, losses)
            if self.step % self.settings.checkpoint_every == 0:
                self.save_checkpoint()
        self.save_checkpoint()
        return self.write_artifact(time.perf_counter() - started, self.step - first)

    def write_artifact(self, seconds: float, steps_run: int) -> Path:
        training = {
            "steps": self.step,
            "steps_this_run": steps_run,
            "seconds_this_run": round(seconds, 3),
            "losses": self.last_losses,
            "content_images": len(self.content),
            "style_images": len(self.style),
            "random_encoder": self.settings.random_encoder,
            "settings": self.settings.model_dump(mode="json"),
        }
        checksum = save_artifact(self.settings.out, AdaINNet(self.encoder, self.decoder), training=training)
        log.info("wrote %s (sha256 of tensors %s…)", self.settings.out, checksum[:12])
        return Path(self.settings.out)
