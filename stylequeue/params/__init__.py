"""Typed, defaulted, range-checked engine parameters, written once.

Each mode's parameters are a frozen dataclass whose fields are declared with :func:`param`.
The same declaration drives

* validation (``__post_init__`` of :class:`Params` checks every field and names it on error),
* parsing of untyped input (API form fields, CLI strings) with :func:`parse_params`,
* the description served by ``GET /api/v1/engines`` and the CLI's flags (:func:`describe`).

This module never imports torch: the API validates jobs without loading any engine.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from stylequeue.errors import ValidationError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Spec:
    """What a parameter accepts, beyond its Python type."""

    help: str
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    choices: tuple[str, ...] | None = None
    # For tuple-valued parameters: allowed item values (e.g. layer names) and the item range.
    item_choices: tuple[str, ...] | None = None


def param(default: Any, help: str, **spec: Any) -> Any:
    """Declare a parameter field: its default, a help line and its :class:`Spec` bounds."""
    return dataclasses.field(default=default, metadata={"spec": Spec(help=help, **spec)})


@dataclass(frozen=True)
class Params:
    """Base class of every mode's parameter dataclass."""

    mode: ClassVar[str] = ""
    min_styles: ClassVar[int] = 1
    max_styles: ClassVar[int] = 1

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_field(f, getattr(self, f.name))
        self.check()

    def check(self) -> None:
        """Cross-field rules; subclasses override. Raise :class:`ValidationError`."""

    def check_styles(self, n_styles: int) -> None:
        """Rules that depend on how many style images came with the job."""
        if not self.min_styles <= n_styles <= self.max_styles:
            want = (
                f"exactly {self.min_styles}"
                if self.min_styles == self.max_styles
                else f"{self.min_styles} to {self.max_styles}"
            )
            raise ValidationError(
                f"mode {self.mode!r} takes {want} style image(s), got {n_styles}", field="style"
            )

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def field_types(cls: type[Params]) -> dict[str, Any]:
    """Resolved type hints of a parameter class (annotations are strings under PEP 563)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _spec(f: dataclasses.Field) -> Spec:
    return f.metadata["spec"]


def _check_number(name: str, value: float, spec: Spec) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError("must be a finite number", field=name)
    if spec.min is not None:
        if spec.min_exclusive and value <= spec.min:
            raise ValidationError(f"must be greater than {spec.min:g}, got {value:g}", field=name)
        if not spec.min_exclusive and value < spec.min:
            raise ValidationError(f"must be at least {spec.min:g}, got {value:g}", field=name)
    if spec.max is not None and value > spec.max:
        raise ValidationError(f"must be at most {spec.max:g}, got {value:g}", field=name)


def _check_field(f: dataclasses.Field, value: Any) -> None:
    spec = _spec(f)
    if value is None:
        return
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        _check_number(f.name, value, spec)
    elif isinstance(value, str):
        if spec.choices is not None and value not in spec.choices:
            raise ValidationError(f"must be one of {', '.join(spec.choices)}; got {value!r}", field=f.name)
    elif isinstance(value, tuple):
        for item in value:
            if spec.item_choices is not None and item not in spec.item_choices:
                raise ValidationError(
                    f"unknown value {item!r}; allowed: {', '.join(spec.item_choices)}", field=f.name
                )
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                _check_number(f.name, item, spec)


def _base_type(tp: Any) -> tuple[Any, bool]:
    """Strip ``Optional`` from a type hint; say whether None is allowed."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        non_none = [a for a in args if a is not type(None)]
        return non_none[0], len(non_none) != len(args)
    return tp, False


def _coerce_scalar(name: str, tp: Any, raw: Any) -> Any:
    if tp is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValidationError(f"must be true or false, got {raw!r}", field=name)
    if tp in (int, float):
        if isinstance(raw, bool):
            raise ValidationError(f"must be a number, got {raw!r}", field=name)
        try:
            number = float(raw) if tp is float else _to_int(raw)
        except (TypeError, ValueError):
            kind = "an integer" if tp is int else "a number"
            raise ValidationError(f"must be {kind}, got {raw!r}", field=name) from None
        return number
    return str(raw)


def _to_int(raw: Any) -> int:
    if isinstance(raw, float):
        if not raw.is_integer():
            raise ValueError(raw)
        return int(raw)
    return int(str(raw).strip())


def coerce(name: str, tp: Any, raw: Any) -> Any:
    """Turn untyped input (a form string, a JSON value) into the field's Python type."""
    base, optional = _base_type(tp)
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        if optional:
            return None
        if typing.get_origin(base) is tuple:
            return ()
        raise ValidationError("must not be empty", field=name)
    if typing.get_origin(base) is tuple:
        item_tp = typing.get_args(base)[0]
        items = raw if isinstance(raw, (list, tuple)) else [p for p in str(raw).split(",") if p.strip()]
        return tuple(_coerce_scalar(name, item_tp, i.strip() if isinstance(i, str) else i) for i in items)
    return _coerce_scalar(name, base, raw)


def parse_params(cls: type[Params], raw: Mapping[str, Any]) -> Params:
    """Build ``cls`` from untyped input; unknown names and bad values raise :class:`ValidationError`."""
    types = field_types(cls)
    unknown = sorted(set(raw) - set(types))
    if unknown:
        raise ValidationError(
            f"unknown parameter for mode {cls.mode!r}; known: {', '.join(sorted(types))}",
            field=unknown[0],
        )
    values = {name: coerce(name, types[name], value) for name, value in raw.items()}
    return cls(**values)


def _type_name(tp: Any) -> str:
    base, optional = _base_type(tp)
    if typing.get_origin(base) is tuple:
        name = f"list[{typing.get_args(base)[0].__name__}]"
    else:
        name = base.__name__
    return f"{name} | null" if optional else name


def describe(cls: type[Params]) -> list[dict[str, Any]]:
    """Each parameter's name, type, default, bounds and help, for the API, UI and CLI."""
    types = field_types(cls)
    out = []
    for f in dataclasses.fields(cls):
        spec = _spec(f)
        entry: dict[str, Any] = {
            "name": f.name,
            "type": _type_name(types[f.name]),
            "default": list(f.default) if isinstance(f.default, tuple) else f.default,
            "help": spec.help,
        }
        for key in ("min", "max", "choices", "item_choices"):
            value = getattr(spec, key)
            if value is not None:
                entry[key] = list(value) if isinstance(value, tuple) else value
        if spec.min_exclusive:
            entry["min_exclusive"] = True
        out.append(entry)
    return out
