"""The modes (engine names) the service knows, and each one's parameter class.

Torch-free on purpose: the API validates jobs against these without loading an engine. The
consumer's engine registry (``consumer.engines.registry``) maps the same names to engines.

The production modes are fixed. The ``synthetic`` load-test mode joins them only in a process
started with ``STYLEQUEUE_SYNTHETIC_ENGINE=1`` (API workers and consumers alike), so a deployment
that never sets it serves, documents and generates types for exactly gatys and blend.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stylequeue.config import LoadTestConfig, load
from stylequeue.errors import ValidationError
from stylequeue.params import Params, parse_params
from stylequeue.params.blend import BlendParams
from stylequeue.params.gatys import GatysParams
from stylequeue.params.synthetic import SyntheticParams

PRODUCTION_MODES: dict[str, type[Params]] = {"gatys": GatysParams, "blend": BlendParams}


def enabled_modes(environ: Mapping[str, str] | None = None) -> dict[str, type[Params]]:
    """The production modes, plus ``synthetic`` where ``STYLEQUEUE_SYNTHETIC_ENGINE`` is on."""
    modes = dict(PRODUCTION_MODES)
    if load(LoadTestConfig, environ).synthetic_engine:
        modes[SyntheticParams.mode] = SyntheticParams
    return modes


# Read once, at import: the modes are fixed for a process's life, every module reads this as a
# constant (routes, OpenAPI, CLI choices), and a malformed switch stops the process at start-up.
MODES: dict[str, type[Params]] = enabled_modes()


def params_class(mode: str) -> type[Params]:
    try:
        return MODES[mode]
    except KeyError:
        raise ValidationError(f"unknown mode {mode!r}; known: {', '.join(MODES)}", field="mode") from None


def validate_job_params(mode: str, raw: Mapping[str, Any], n_styles: int) -> Params:
    """Parse and check a job's parameters and style count: the API's and CLI's one entry point."""
    params = parse_params(params_class(mode), raw)
    params.check_styles(n_styles)
    return params
