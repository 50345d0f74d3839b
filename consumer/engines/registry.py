"""The engine registry: mode name → engine factory.

Factories are imported lazily so that naming the modes never imports torch, and each engine
is built once per process and reused (its network and weights stay loaded).
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from consumer.engines.base import Engine
from stylequeue.config import EngineConfig
from stylequeue.errors import EngineUnavailable
from stylequeue.modes import MODES

# mode → "module:factory"; a factory takes (EngineConfig, s3=client | None, redis=client | None)
# and returns an Engine. s3 fetches s3:// weights; redis lets consumers share cached work.
TARGETS: dict[str, str] = {
    "gatys": "consumer.engines.gatys:create_engine",
    "blend": "consumer.engines.blend:create_engine",
    "synthetic": "consumer.engines.synthetic:create_engine",  # load tests: only where enabled
}
# The modes this process knows (stylequeue.modes: synthetic only with STYLEQUEUE_SYNTHETIC_ENGINE=1).
FACTORIES: dict[str, str] = {mode: TARGETS[mode] for mode in MODES}

_cache: dict[tuple[str, EngineConfig], Engine] = {}
_lock = threading.Lock()


def modes() -> list[str]:
    return list(FACTORIES)


def create_engine(
    mode: str, config: EngineConfig, *, s3: Any | None = None, redis: Any | None = None
) -> Engine:
    """Build the engine for ``mode`` (a fresh one; see :func:`get_engine` for the shared one)."""
    try:
        target = FACTORIES[mode]
    except KeyError:
        raise EngineUnavailable(f"unknown mode {mode!r}; known: {', '.join(FACTORIES)}") from None
    module_name, _, attr = target.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    return factory(config, s3=s3, redis=redis)


def get_engine(mode: str, config: EngineConfig, *, s3: Any | None = None, redis: Any | None = None) -> Engine:
    """The process-wide engine for ``(mode, config)``, built on first use."""
    key = (mode, config)
    with _lock:
        if key not in _cache:
            _cache[key] = create_engine(mode, config, s3=s3, redis=redis)
        return _cache[key]
