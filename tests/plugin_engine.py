"""A new engine as an engine is added: this one module (parameters, declaration, engine), no torch.

``tests/test_engine_plugin.py`` registers it with one entry of the registry's ``MODULES`` and shows
that the API lists, validates and accepts its jobs and a consumer runs them, with nothing else
edited. It tints the content towards the style's mean colour, a step at a time.
"""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageStat

from consumer.engines.base import Availability, EngineResult, Hooks, Progress
from consumer.engines.kind import EngineKind
from stylequeue.params import Params, param


class TintParams(Params):
    mode = "tint"
    min_styles = 1
    max_styles = 1

    strength: float = param(0.5, "share of the style's mean colour in the result", ge=0.0, le=1.0)
    steps: int = param(3, "steps towards it, each one a progress report and a snapshot", ge=1, le=10)


class TintEngine:
    mode = "tint"

    def availability(self) -> Availability:
        return Availability(True, model="tint (test plugin)")

    def run(
        self,
        content: Image.Image,
        styles: list[Image.Image],
        params: TintParams,
        hooks: Hooks | None = None,
        *,
        init_image: Image.Image | None = None,
    ) -> EngineResult:
        hooks = hooks or Hooks()
        base = content.convert("RGB")
        colour = tuple(round(c) for c in ImageStat.Stat(styles[0].convert("RGB")).mean)
        tint = Image.new("RGB", base.size, colour)
        image = base
        for step in range(1, params.steps + 1):
            hooks.check_cancel()
            share = params.strength * step / params.steps
            image = Image.blend(base, tint, share)
            hooks.progress(Progress(step, params.steps, 0.0, losses={"total": 1.0 - share}, size=image.size))
            hooks.snapshot(step, image)
        return EngineResult(image, meta={"tint": list(colour)})


def create_engine(config: Any, *, s3: Any | None = None, redis: Any | None = None) -> TintEngine:
    return TintEngine()


KIND = EngineKind(
    params=TintParams,
    title="Tint (test plugin)",
    summary="Mixes the style's mean colour into the content: a test of adding an engine.",
    create="plugin_engine:create_engine",
    losses=True,
    live_snapshots=True,
)
