"""The modes (engine names) the service knows, and each one's parameter class.

Torch-free on purpose: the API validates jobs against these without loading an engine. The
consumer's engine registry (``consumer.engines.registry``) maps the same names to engines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stylequeue.errors import ValidationError
from stylequeue.params import Params, parse_params
from stylequeue.params.blend import BlendParams
from stylequeue.params.gatys import GatysParams

MODES: dict[str, type[Params]] = {"gatys": GatysParams, "blend": BlendParams}


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
