"""Strict JSON for every response body: non-finite numbers become ``null``.

Python's ``json`` writes ``NaN`` and ``Infinity``, which are not JSON: the web UI's
``JSON.parse`` refused a whole loss curve over one diverged point. Bodies are dumped with
``allow_nan=False`` first (the common case costs nothing extra); only a body that holds a
non-finite float is walked and dumped again with those values as ``null``.
"""

from __future__ import annotations

import math
from typing import Any

from flask.json.provider import DefaultJSONProvider


def finite(value: Any) -> Any:
    """``value`` with every NaN or ±inf float (at any depth) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


class StrictJSONProvider(DefaultJSONProvider):
    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs["allow_nan"] = False
        try:
            return super().dumps(obj, **kwargs)
        except ValueError:
            return super().dumps(finite(obj), **kwargs)
