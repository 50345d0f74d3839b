"""The job-submission form, one schema per mode, generated from the modes' parameter models.

``POST /api/v1/jobs`` takes a multipart form: ``mode``, the files (``content``, ``style`` once per
style image, ``init_image`` for gatys) and the mode's parameters as text fields. Each mode's form
is a pydantic model made here from its :class:`~stylequeue.params.Params` model, so the request
schema cannot drift from what the service accepts; the OpenAPI document joins them into one
union discriminated by ``mode``. The parameters' cross-field rules (an init image only with
init_method=image, one weight per style, layers a network lacks) are declared on the parameter
models as data and stated here in JSON Schema, so that a request the schema allows is one the API
accepts, with three documented exceptions answered 422 naming the field: a content image too
thin for ``image_size`` (no schema of a form can see pixels), ``style_layer_weights`` not one per
style layer, and init_method=image without an ``init_image`` (see :func:`_conditions` for why
those two stay out). ``tests/fuzz_hooks.py`` checks that schemathesis's valid submissions meet
no other refusal.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, RootModel, WithJsonSchema, create_model
from pydantic.fields import FieldInfo

from stylequeue.params import Params

# A file part. Its bytes decide its type (JPEG, PNG or WebP), not the part's own header.
Upload = Annotated[
    bytes,
    WithJsonSchema(
        {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream", "minLength": 1}
    ),
]


def form_model(params: type[Params]) -> type[BaseModel]:
    """The multipart form of one mode: its mode, files and parameters (text fields)."""
    fields: dict[str, Any] = {
        "mode": (Literal[params.mode], Field(description="engine to run")),  # type: ignore[valid-type]
        "content": (Upload, Field(description="content image (JPEG, PNG or WebP)")),
        "style": (
            list[Upload],
            Field(
                min_length=params.min_styles,
                max_length=params.max_styles,
                description="style image(s), JPEG, PNG or WebP: repeat the field once per image",
            ),
        ),
    }
    if params.init_image_when is not None:
        when = "=".join(params.init_image_when)
        fields["init_image"] = (Upload, Field(None, description=f"starting image ({when})"))
    fields |= {name: _form_field(info) for name, info in params.model_fields.items()}
    config = ConfigDict(extra="forbid", json_schema_extra=lambda schema, _: _conditions(schema, params))
    return create_model(f"{params.mode.capitalize()}Form", __config__=config, **fields)


def _form_field(info: FieldInfo) -> tuple[Any, FieldInfo]:
    """A parameter as a form field. A form cannot send null: an optional parameter (``seed``) is a
    field of its own type that may be left out, which is how it takes its default, None."""
    args = typing.get_args(info.annotation)
    if type(None) not in args:
        return info.annotation, info
    base = next(a for a in args if a is not type(None))
    return Annotated[base, *info.metadata], Field(None, description=info.description)


def _conditions(schema: dict[str, Any], params: type[Params]) -> None:
    """The rules a parameter model declares as data, as JSON Schema, stated positively (``anyOf``
    cases and ``dependentSchemas``; no ``not``, ``false`` or ``if``/``then``, which schemathesis
    cannot generate from over a form holding file parts), and each narrowed property repeats its
    whole schema: a multipart encoder that reads one case's properties must still see that
    ``style`` holds files."""
    props = schema["properties"]

    def narrowed(name: str, **extra: Any) -> dict[str, Any]:
        return {k: v for k, v in props[name].items() if k not in ("title", "description", "default")} | extra

    rules: list[list[dict[str, Any]]] = []
    if params.init_image_when is not None:  # an init_image only with, e.g., init_method=image
        # (and init_method=image without one is the API's 422: "A requires B" has no positive form.)
        switch, value = params.init_image_when
        image = {"properties": {switch: narrowed(switch, const=value)}, "required": [switch]}
        schema["dependentSchemas"] = {"init_image": image}
    # `matching_lengths` (style_layer_weights as many as style_layers) is left to the API's 422:
    # stated as 18 alternatives it makes the form's alternatives too many for schemathesis to
    # generate from, and the rule reads plainly in the fields' descriptions.
    for name in params.per_style:  # weights left out, or one per style image and not all zero
        cases = [{"properties": {name: narrowed(name, maxItems=0)}}]
        for n in range(params.min_styles, params.max_styles + 1):
            weights = narrowed(name, minItems=n, maxItems=n, contains={"exclusiveMinimum": 0})
            cases.append({"properties": {"style": narrowed("style", minItems=n, maxItems=n), name: weights}})
        rules.append(cases)
    for (switch, value), allowed in params.items_when.items():  # e.g. vgg16 has no relu*_4 layers
        others = [v for v in typing.get_args(params.model_fields[switch].annotation) if v != value]
        lists = {name: narrowed(name, items={"enum": list(items)}) for name, items in allowed.items()}
        chosen = {"properties": {switch: narrowed(switch, const=value), **lists}, "required": [switch]}
        rules.append([chosen, {"properties": {switch: narrowed(switch, enum=others)}}])
    if rules:
        schema["allOf"] = [{"anyOf": cases} for cases in rules]


def submit_form(modes: dict[str, type[Params]]) -> type[RootModel]:
    """The submission form of every mode: a union discriminated by ``mode``."""
    forms = tuple(form_model(params) for params in modes.values())
    union = Annotated[Union[forms], Field(discriminator="mode")]  # noqa: UP007 - a runtime tuple of models

    class SubmitForm(RootModel[union]):  # type: ignore[valid-type]
        """A job submission: the fields of the mode it names."""

    return SubmitForm
