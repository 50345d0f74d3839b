"""Engine parameters: each mode's are one pydantic model, the single declaration of the contract.

A model's fields carry type, default, range (``ge``/``le``/``gt``), choices (``Literal``), list
bounds (``max_length``) and a description. Everything else derives from it: the API's and CLI's
validation (:func:`parse_params`), ``GET /api/v1/engines`` and the web UI's form
(:func:`describe`, from the model's JSON Schema), the OpenAPI document's per-mode request schemas
and the CLI's flags. Errors name the field, in the words clients already read ("must be at most
2048, got 5000"): pydantic's error types are translated once, here.

Untyped input (HTML form fields, CLI strings) is read by one rule for every field: a list is
comma-separated text, an empty text is "not given" for an optional or a list field, numbers are
ASCII as JSON writes them, and booleans follow pydantic's lax rule (true/false, 1/0, yes/no,
on/off, any case), the same rule the settings in :mod:`stylequeue.config` use.

This module never imports torch: the API validates jobs without loading any engine.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from typing import Any, ClassVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from stylequeue.errors import ValidationError

# Numbers as JSON and HTML forms write them, ASCII only: pydantic would also take "1_0_0", which no
# client means as a number. nan/inf pass here so that the range check can say "must be a finite number".
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:nan|inf|infinity)", re.I)


def param(default: Any, help: str, **options: Any) -> Any:
    """A field: its default, the help line clients read, and pydantic's options (bounds, an alias)."""
    return Field(default, description=help, **options)


class TextInput(BaseModel):
    """A model that also reads untyped text (form fields, CLI flags, a query) by the one rule the
    module docstring states: the engines' parameters and the API's queries."""

    def __init__(self, **values: Any) -> None:
        # A bad value is our ValidationError naming its field, in the words clients read.
        try:
            super().__init__(**values)
        except pydantic.ValidationError as exc:
            raise translate(exc, type(self)) from None

    @model_validator(mode="before")
    @classmethod
    def _read_text(cls, raw: Any) -> Any:
        if not isinstance(raw, Mapping):
            return raw
        fields = cls.model_fields
        return {
            name: _read(name, fields[name], value) if name in fields else value for name, value in raw.items()
        }


class Params(TextInput):
    """Base class of every mode's parameter model: frozen, no unknown names, finite numbers."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    mode: ClassVar[str] = ""
    min_styles: ClassVar[int] = 1  # style images a job takes: exactly one unless the mode says otherwise
    max_styles: ClassVar[int] = 1
    # Cross-field rules a subclass declares as data (see GatysParams); checked here, and stated in
    # the request schema by api.forms: list field → (the list its length matches, words for the error) …
    matching_lengths: ClassVar[dict[str, tuple[str, str]]] = {}
    # … list fields with one entry per style image … and (field, value) → allowed items of list fields.
    per_style: ClassVar[tuple[str, ...]] = ()
    items_when: ClassVar[dict[tuple[str, str], dict[str, tuple[str, ...]]]] = {}
    # (field, value) that makes a job start from an uploaded ``init_image``; None: the mode takes none.
    init_image_when: ClassVar[tuple[str, str] | None] = None

    def wants_init_image(self) -> bool:
        """Whether this job starts from an uploaded ``init_image`` (which it then must have)."""
        return (
            self.init_image_when is not None
            and getattr(self, self.init_image_when[0]) == self.init_image_when[1]
        )

    @model_validator(mode="after")
    def _cross_field(self) -> Params:
        for name, (other, words) in self.matching_lengths.items():
            mine, theirs = getattr(self, name), getattr(self, other)
            if mine and len(mine) != len(theirs):
                raise ValidationError(f"has {len(mine)} weights for {len(theirs)} {words}", field=name)
        for (switch, value), allowed in self.items_when.items():
            if getattr(self, switch) == value:
                for name, items in allowed.items():
                    missing = [n for n in getattr(self, name) if n not in items]
                    if missing:
                        raise ValidationError(f"{', '.join(missing)} not in {value}", field=name)
        self.check()
        return self

    def check(self) -> None:
        """Cross-field rules the declarations above cannot state; subclasses override."""

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
        for name in self.per_style:
            weights = getattr(self, name)
            if weights and len(weights) != n_styles:
                raise ValidationError(f"has {len(weights)} weights for {n_styles} style image(s)", field=name)
            if weights and sum(weights) <= 0:
                raise ValidationError("weights must not all be zero", field=name)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(annotation) is tuple


def _optional(info: pydantic.fields.FieldInfo) -> bool:
    return type(None) in typing.get_args(info.annotation)


def _scalar(annotation: Any) -> Any:
    """The item type of a list, the non-None type of an optional, ``str`` for choices."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return str
    if origin is typing.Annotated or origin is tuple:
        return _scalar(args[0])
    if args:  # Optional[...]
        return _scalar(next(a for a in args if a is not type(None)))
    return annotation


def _max_items(info: pydantic.fields.FieldInfo) -> int | None:
    return next((m.max_length for m in info.metadata if getattr(m, "max_length", None) is not None), None)


def _read(name: str, info: pydantic.fields.FieldInfo, raw: Any) -> Any:
    if isinstance(raw, str) and not raw.strip():
        if _optional(info):
            return None
        if _is_list(info.annotation):
            return ()
        raise ValidationError("must not be empty", field=name)
    if _is_list(info.annotation):
        items = raw if isinstance(raw, (list, tuple)) else [p for p in str(raw).split(",") if p.strip()]
        limit = _max_items(info)
        # Counted before the items are read: a list of 10,000 names is refused for its length.
        if limit is not None and len(items) > limit:
            raise ValidationError(f"has {len(items)} items; the limit is {limit}", field=name)
        return tuple(_number_text(name, info, i.strip() if isinstance(i, str) else i) for i in items)
    return _number_text(name, info, raw)


def _number_text(name: str, info: pydantic.fields.FieldInfo, raw: Any) -> Any:
    """Refuse what pydantic's lax numbers would take but no client means: True as 1, "1_000"."""
    if _scalar(info.annotation) not in (int, float):
        return raw
    if isinstance(raw, bool):
        raise ValidationError(f"must be a number, got {quoted(raw)}", field=name)
    if isinstance(raw, str) and (len(raw) > 100 or not _NUMBER.fullmatch(raw.strip())):
        kind = "an integer" if _scalar(info.annotation) is int else "a number"
        raise ValidationError(f"must be {kind}, got {quoted(raw)}", field=name)
    return raw


def quoted(raw: Any, limit: int = 40) -> str:
    """``repr(raw)``, cut to ``limit`` characters: an error repeats what was sent, not 500 KB of it."""
    text = repr(raw)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(str(raw))} characters)"


def show_number(value: float) -> str:
    """A number as a client wrote it: integers in full (2147483648, not 2.14748e+09), floats exactly."""
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e16):
        return str(int(value))
    return repr(value)


def _got(value: Any) -> str:
    try:
        return show_number(value if isinstance(value, int) else float(value))
    except (TypeError, ValueError, OverflowError):
        return quoted(value)


# pydantic's error type → our message, from its context and the value sent.
_MESSAGES: dict[str, Any] = {
    "greater_than_equal": lambda c, v: f"must be at least {show_number(c['ge'])}, got {_got(v)}",
    "greater_than": lambda c, v: f"must be greater than {show_number(c['gt'])}, got {_got(v)}",
    "less_than_equal": lambda c, v: f"must be at most {show_number(c['le'])}, got {_got(v)}",
    "finite_number": lambda c, v: "must be a finite number",
    **dict.fromkeys(
        ("int_parsing", "int_from_float", "int_type"), lambda c, v: f"must be an integer, got {quoted(v)}"
    ),
    **dict.fromkeys(("float_parsing", "float_type"), lambda c, v: f"must be a number, got {quoted(v)}"),
    **dict.fromkeys(("bool_parsing", "bool_type"), lambda c, v: f"must be true or false, got {quoted(v)}"),
    "string_type": lambda c, v: f"must be text, got {quoted(v)}",
    "enum": lambda c, v: f"must be one of {c['expected']}; got {quoted(v)}",
    "too_short": lambda c, v: f"name at least {c['min_length']}",
    "too_long": lambda c, v: f"has {c['actual_length']} items; the limit is {c['max_length']}",
}


def translate(exc: pydantic.ValidationError, cls: type[BaseModel]) -> ValidationError:
    """The first of pydantic's errors as a :class:`ValidationError` naming its field."""
    error = exc.errors(include_url=False)[0]
    loc, kind, ctx, value = error["loc"], error["type"], error.get("ctx") or {}, error.get("input")
    field = str(loc[0]) if loc else "params"
    if isinstance(ctx.get("error"), ValidationError):  # raised by a model validator: already ours
        return ctx["error"]
    if kind == "extra_forbidden":
        known = ", ".join(sorted(cls.model_fields))
        what = f"parameter for mode {cls.mode!r}" if issubclass(cls, Params) else "setting"
        return ValidationError(f"unknown {what}; known: {known}", field=field)
    if kind == "literal_error":
        choices = ", ".join(typing.get_args(_choices(cls.model_fields[field].annotation)))
        if len(loc) > 1:
            return ValidationError(f"unknown value {quoted(value)}; allowed: {choices}", field=field)
        return ValidationError(f"must be one of {choices}; got {quoted(value)}", field=field)
    message = _MESSAGES.get(kind)
    return ValidationError(message(ctx, value) if message else error["msg"], field=field)


def _choices(annotation: Any) -> Any:
    """The ``Literal[...]`` inside a field's annotation (``Literal`` itself, or a list's items)."""
    if typing.get_origin(annotation) is typing.Literal:
        return annotation
    return next(_choices(a) for a in typing.get_args(annotation) if a is not Ellipsis and a is not type(None))


def parse_params(cls: type[Params], raw: Mapping[str, Any]) -> Params:
    """Build ``cls`` from untyped input; unknown names and bad values raise :class:`ValidationError`."""
    return cls(**{str(name): value for name, value in raw.items()})


def coerce(name: str, tp: Any, raw: Any) -> Any:
    """One value outside a model (a query flag such as ``presigned``) by the same rule."""
    try:
        return TypeAdapter(tp).validate_python(raw.strip() if isinstance(raw, str) else raw)
    except pydantic.ValidationError as exc:
        kind = exc.errors(include_url=False)[0]["type"]
        message = _MESSAGES.get(kind, lambda c, v: f"is not valid: {quoted(v)}")
        raise ValidationError(message({}, raw), field=name) from None


def describe(cls: type[Params]) -> list[dict[str, Any]]:
    """Each parameter as ``/api/v1/engines`` lists it: name, help, default and its JSON Schema.

    The schema is pydantic's, field by field, so the UI, the OpenAPI document and the API's own
    checks read the same bounds; the description is lifted out as ``help``.
    """
    return [
        {
            "name": name,
            "help": cls.model_fields[name].description,
            "default": schema.get("default"),
            "schema": {k: v for k, v in schema.items() if k not in ("title", "description", "default")},
        }
        for name, schema in cls.model_json_schema()["properties"].items()
    ]
