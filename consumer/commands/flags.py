"""What the engine sub-commands share: parameter flags derived from a params model, and images.

Values stay strings so that :func:`stylequeue.params.parse_params` — the code the API uses —
checks them and names the field of a bad one.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stylequeue.errors import ValidationError
from stylequeue.params import Params, describe, show_number


def add_param_flags(
    group: argparse._ArgumentGroup,
    params_cls: type[Params],
    *,
    separator: str = "_",
    aliases: dict[str, list[str]] | None = None,
) -> None:
    """One flag per parameter field (``--content_weight`` or ``--content-weight``), no defaults set."""
    for entry in describe(params_cls):
        name, schema = entry["name"], _non_null(entry["schema"])
        flags = [f"--{name.replace('_', separator)}", *(aliases or {}).get(name, [])]
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": _help(entry, schema)}
        if schema.get("type") == "boolean":
            kwargs.update(nargs="?", const="true", metavar="BOOL")
        elif schema.get("type") == "array":
            kwargs["metavar"] = "A,B,…"
        else:
            kwargs["metavar"] = {"integer": "INT", "number": "FLOAT"}.get(schema.get("type"), "STR")
        group.add_argument(*flags, **kwargs)


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional field's schema without its ``null`` alternative."""
    return next((s for s in schema.get("anyOf", []) if s.get("type") != "null"), schema)


def _help(entry: dict[str, Any], schema: dict[str, Any]) -> str:
    values = schema.get("items", schema)  # a list's bounds and choices are its items'
    choices = f" [{', '.join(values['enum'])}]" if "enum" in values else ""
    low, high = values.get("minimum", values.get("exclusiveMinimum")), values.get("maximum")
    exclusive = ">" if "exclusiveMinimum" in values else ""
    bounds = (
        f" ({exclusive}{show_number(low)}–{show_number(high)})"
        if low is not None and high is not None
        else ""
    )
    default = entry["default"]
    shown = (",".join(map(str, default)) or "none") if isinstance(default, list) else default
    return f"{entry['help']}{choices}{bounds} (default: {shown})"


def param_values(args: argparse.Namespace, params_cls: type[Params]) -> dict[str, Any]:
    """The parameter flags the user gave; omitted ones take the model's defaults."""
    return {n: getattr(args, n) for n in params_cls.model_fields if getattr(args, n) is not None}


def open_image(path: Path, field: str) -> Any:
    """A local image as RGB, or a ValidationError naming the flag."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise ValidationError(f"no such file: {path}", field=field) from None
    except (OSError, UnidentifiedImageError) as exc:
        raise ValidationError(f"not a readable image: {path} ({exc})", field=field) from None
