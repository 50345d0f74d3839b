"""The engine registry: the only list of modes, each one's engine module, and the engines built.

An engine is one module that declares ``KIND`` (:class:`~consumer.engines.kind.EngineKind`: its
parameter model, title, capabilities and factory) and imports without torch, so the API reads
every declaration here without loading a network. Adding an engine is one module and one entry
of :data:`MODULES`.

The production modes are fixed. The ``synthetic`` load-test mode joins them only in a process
started with ``STYLEQUEUE_SYNTHETIC_ENGINE=1`` (API workers and consumers alike), so a deployment
that never sets it serves, documents and generates types for exactly gatys and blend. Each engine
is built once per process and reused (its network and weights stay loaded).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from typing import Any

from consumer.engines.base import Engine
from consumer.engines.kind import EngineKind
from stylequeue.config import EngineConfig, LoadTestConfig, load
from stylequeue.errors import ConfigError, EngineUnavailable, ValidationError
from stylequeue.params import Params, parse_params

PRODUCTION: dict[str, str] = {"gatys": "consumer.engines.gatys", "blend": "consumer.engines.blend"}
LOAD_TEST: dict[str, str] = {"synthetic": "consumer.engines.synthetic"}


def enabled_modules(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The production modes, plus ``synthetic`` where ``STYLEQUEUE_SYNTHETIC_ENGINE`` is on."""
    return {**PRODUCTION, **(LOAD_TEST if load(LoadTestConfig, environ).synthetic_engine else {})}


# mode → engine module, in the order clients see them. Read once, at import: the modes are fixed
# for a process's life, and a malformed switch stops the process at start-up.
MODULES: dict[str, str] = enabled_modules()

_cache: dict[tuple[str, EngineConfig], Engine] = {}
_lock = threading.Lock()


def modes() -> list[str]:
    return list(MODULES)


def kinds() -> dict[str, EngineKind]:
    """Every enabled mode's declaration, in order (modules are imported once, then looked up)."""
    return {mode: kind(mode) for mode in MODULES}


def kind(mode: str) -> EngineKind:
    try:
        declared: EngineKind = importlib.import_module(MODULES[mode]).KIND
    except KeyError:
        raise EngineUnavailable(f"unknown mode {mode!r}; known: {', '.join(MODULES)}") from None
    if declared.mode != mode:
        raise ConfigError(f"{MODULES[mode]} declares mode {declared.mode!r}, registered as {mode!r}")
    return declared


def params_class(mode: str) -> type[Params]:
    if mode not in MODULES:
        raise ValidationError(f"unknown mode {mode!r}; known: {', '.join(MODULES)}", field="mode")
    return kind(mode).params


def validate_job_params(mode: str, raw: Mapping[str, Any], n_styles: int) -> Params:
    """Parse and check a job's parameters and style count: the API's and CLI's one entry point."""
    params = parse_params(params_class(mode), raw)
    params.check_styles(n_styles)
    return params


def create_engine(
    mode: str, config: EngineConfig, *, s3: Any | None = None, redis: Any | None = None
) -> Engine:
    """A fresh engine (:func:`get_engine`: the shared one); ``s3`` fetches s3:// weights, ``redis``
    lets consumers share cached work."""
    return kind(mode).factory()(config, s3=s3, redis=redis)


def get_engine(mode: str, config: EngineConfig, *, s3: Any | None = None, redis: Any | None = None) -> Engine:
    """The process-wide engine for ``(mode, config)``, built on first use."""
    key = (mode, config)
    with _lock:
        if key not in _cache:
            _cache[key] = create_engine(mode, config, s3=s3, redis=redis)
        return _cache[key]
