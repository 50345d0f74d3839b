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
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from stylequeue.errors import ValidationError

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
# Numbers as JSON and HTML forms write them, ASCII only: Python's int() and float() would also take
# "1_0_0" and full-width digits, which no client means as a number. nan/inf pass here so that the
# range check can say "must be a finite number".
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:nan|inf|infinity)", re.I)


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
    # For tuple-valued parameters: the most items (a list is never unbounded).
    max_items: int | None = None


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

    def check_images(self, content: tuple[int, int], styles: list[tuple[int, int]]) -> None:
        """Rules that depend on the input images' sizes (width, height); subclasses override.

        Pure and torch-free, so the API refuses at submission exactly what the engine would refuse
        when it runs: the engines call the same method on the decoded images.
        """

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


def quoted(raw: Any, limit: int = 40) -> str:
    """``repr(raw)``, cut to ``limit`` characters: an error repeats what was sent, not 500 KB of it."""
    text = repr(raw)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(str(raw))} characters)"


def show_number(value: float) -> str:
    """A number as a client wrote it: integers in full (2147483648, not 2.14748e+09), floats exactly."""
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e16):
        return str(int(value))
    return repr(value)


def _check_number(name: str, value: float, spec: Spec) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError("must be a finite number", field=name)
    low, high, got = spec.min, spec.max, show_number(value)
    if low is not None:
        if spec.min_exclusive and value <= low:
            raise ValidationError(f"must be greater than {show_number(low)}, got {got}", field=name)
        if not spec.min_exclusive and value < low:
            raise ValidationError(f"must be at least {show_number(low)}, got {got}", field=name)
    if high is not None and value > high:
        raise ValidationError(f"must be at most {show_number(high)}, got {got}", field=name)


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
            raise ValidationError(
                f"must be one of {', '.join(spec.choices)}; got {quoted(value)}", field=f.name
            )
    elif isinstance(value, tuple):
        _check_length(f.name, len(value), spec)
        for item in value:
            if spec.item_choices is not None and item not in spec.item_choices:
                raise ValidationError(
                    f"unknown value {quoted(item)}; allowed: {', '.join(spec.item_choices)}", field=f.name
                )
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                _check_number(f.name, item, spec)


def _check_length(name: str, length: int, spec: Spec) -> None:
    if spec.max_items is not None and length > spec.max_items:
        raise ValidationError(f"has {length} items; the limit is {spec.max_items}", field=name)


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
        if text in TRUE_WORDS:
            return True
        if text in FALSE_WORDS:
            return False
        raise ValidationError(f"must be true or false, got {quoted(raw)}", field=name)
    if tp in (int, float):
        if isinstance(raw, bool):
            raise ValidationError(f"must be a number, got {quoted(raw)}", field=name)
        try:
            number = _to_float(raw) if tp is float else _to_int(raw)
        except (TypeError, ValueError, OverflowError):
            kind = "an integer" if tp is int else "a number"
            raise ValidationError(f"must be {kind}, got {quoted(raw)}", field=name) from None
        return number
    return str(raw)


def _to_int(raw: Any) -> int:
    if isinstance(raw, float):
        if not raw.is_integer():
            raise ValueError(raw)
        return int(raw)
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    # Python refuses int() of more than 4300 digits with its own ValueError; so do we, sooner.
    if len(text) > 100 or not _INT.fullmatch(text):
        raise ValueError(raw)
    return int(text)


def _to_float(raw: Any) -> float:
    if isinstance(raw, (int, float)):
        return float(raw)
    text = str(raw).strip()
    if len(text) > 100 or not _FLOAT.fullmatch(text):
        raise ValueError(raw)
    return float(text)


def coerce(name: str, tp: Any, raw: Any, spec: Spec | None = None) -> Any:
    """Turn untyped input (a form string, a JSON value) into the field's Python type.

    With the field's ``spec``, a list longer than its ``max_items`` is refused before its items are
    coerced one by one.
    """
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
        if spec is not None:
            _check_length(name, len(items), spec)
        return tuple(_coerce_scalar(name, item_tp, i.strip() if isinstance(i, str) else i) for i in items)
    return _coerce_scalar(name, base, raw)


def parse_params(cls: type[Params], raw: Mapping[str, Any]) -> Params:
    """Build ``cls`` from untyped input; unknown names and bad values raise :class:`ValidationError`."""
    types = field_types(cls)
    unknown = sorted(str(name) for name in set(raw) - set(types))
    if unknown:
        raise ValidationError(
            f"unknown parameter for mode {cls.mode!r}; known: {', '.join(sorted(types))}",
            field=unknown[0],
        )
    specs = {f.name: _spec(f) for f in dataclasses.fields(cls)}
    values = {name: coerce(name, types[name], value, specs[name]) for name, value in raw.items()}
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
        for key in ("min", "max", "choices", "item_choices", "max_items"):
            value = getattr(spec, key)
            if value is not None:
                entry[key] = list(value) if isinstance(value, tuple) else value
        if spec.min_exclusive:
            entry["min_exclusive"] = True
        out.append(entry)
    return out
