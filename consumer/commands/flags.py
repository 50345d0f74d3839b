"""What the engine sub-commands share: parameter flags derived from a params dataclass, and images.

Values stay strings so that :func:`stylequeue.params.parse_params` — the code the API uses —
checks them and names the field of a bad one.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from stylequeue.errors import ValidationError
from stylequeue.params import Params, describe


def add_param_flags(
    group: argparse._ArgumentGroup,
    params_cls: type[Params],
    *,
    separator: str = "_",
    aliases: dict[str, list[str]] | None = None,
) -> None:
    """One flag per parameter field (``--content_weight`` or ``--content-weight``), no defaults set."""
    for entry in describe(params_cls):
        name = entry["name"]
        flags = [f"--{name.replace('_', separator)}", *(aliases or {}).get(name, [])]
        kwargs: dict[str, Any] = {"dest": name, "default": None, "help": _help(entry)}
        if entry["type"] == "bool":
            kwargs.update(nargs="?", const="true", metavar="BOOL")
        elif entry["type"].startswith("list["):
            kwargs["metavar"] = "A,B,…"
        else:
            kwargs["metavar"] = entry["type"].split(" ")[0].upper()
        group.add_argument(*flags, **kwargs)


def _help(entry: dict[str, Any]) -> str:
    choices = f" [{', '.join(entry['choices'])}]" if "choices" in entry else ""
    default = entry["default"]
    shown = (",".join(map(str, default)) or "none") if isinstance(default, list) else default
    return f"{entry['help']}{choices} (default: {shown})"


def param_values(args: argparse.Namespace, params_cls: type[Params]) -> dict[str, Any]:
    """The parameter flags the user gave; omitted ones take the dataclass defaults."""
    names = [f.name for f in dataclasses.fields(params_cls)]
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


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
