"""What the sub-commands share: flags derived from a params model, a settings section or a
training-settings model, and images.

Parameter and settings values stay strings so that :func:`stylequeue.params.parse_params` — the
code the API uses — or :meth:`stylequeue.config.Section.overlaid` checks them and names the field
of a bad one; a training-settings flag takes its field's type.
"""

from __future__ import annotations

import argparse
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from stylequeue.config import describe as describe_settings
from stylequeue.errors import ValidationError
from stylequeue.params import Params, describe, show_number

METAVARS = {"boolean": "BOOL", "array": "A,B,…", "integer": "INT", "number": "FLOAT"}


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
            kwargs.update(nargs="?", const="true")
        group.add_argument(*flags, metavar=METAVARS.get(schema.get("type"), "STR"), **kwargs)


def _non_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional field's schema without its ``null`` alternative."""
    return next((s for s in schema.get("anyOf", []) if s.get("type") != "null"), schema)


def _help(entry: dict[str, Any], schema: dict[str, Any]) -> str:
    values = schema.get("items", schema)  # a list's bounds and choices are its items'
    choices = f" [{', '.join(values['enum'])}]" if "enum" in values else ""
    low, high = values.get("minimum", values.get("exclusiveMinimum")), values.get("maximum")
    exclusive = ">" if "exclusiveMinimum" in values else ""
    bounds = f" ({exclusive}{show_number(low)}–{show_number(high)})" if None not in (low, high) else ""
    default = entry["default"]
    shown = (",".join(map(str, default)) or "none") if isinstance(default, list) else default
    return f"{entry['help']}{choices}{bounds} (default: {shown})"


def add_model_flags(
    group: argparse._ArgumentGroup,
    model: type[BaseModel],
    names: Iterable[str] | None = None,
    *,
    flags: Mapping[str, str] | None = None,
    separator: str = "-",
    environment: bool = False,
) -> None:
    """One flag per field of ``model`` (each, or those ``names``): ``--field-name`` unless ``flags``
    spells it otherwise, its help the field's description, a boolean a switch.

    For a settings section read from the environment (``environment``) no defaults are set, so a
    variable's value stands unless its flag is given; the help names the variable and the choices,
    and :meth:`~stylequeue.config.Section.overlaid` checks the values. Otherwise a flag takes its
    field's type and default, and a field without a default is a required flag.
    """
    rows = {row["name"]: row for row in describe_settings(model)} if environment else {}
    for name in names or model.model_fields:
        field = model.model_fields[name]
        flag = (flags or {}).get(name, f"--{name.replace('_', separator)}")
        if field.annotation is bool:  # a switch: only turned on from the command line
            default = None if environment else False
            group.add_argument(flag, dest=name, action="store_true", default=default, help=field.description)
        elif environment:
            row = rows[name]
            choices = f" [{', '.join(row['choices'])}]" if row["choices"] else ""
            text = f"{field.description}{choices} (default: {row['env']})"
            group.add_argument(flag, dest=name, default=None, help=text)
        else:
            required, default = field.is_required(), field.get_default()
            shown = f" (default: {default})" if not required and default not in ("", None) else ""
            text = f"{field.description}{shown}"
            tp = next(
                a for a in typing.get_args(field.annotation) or (field.annotation,) if a is not type(None)
            )
            group.add_argument(flag, dest=name, type=tp, required=required, default=default, help=text)


def flags_given(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The flags among ``names`` the user gave: parameters (omitted ones take the model's defaults) or
    settings for :meth:`~stylequeue.config.Section.overlaid`."""
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
