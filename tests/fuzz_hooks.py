"""Schemathesis hooks for the fuzz test (tests/test_api_fuzz.py): image parts are real images.

A JSON Schema cannot say "a decodable image". The OpenAPI document declares each file part's
media types (``encoding.contentType``: image/jpeg, image/png, image/webp); registering a strategy
for those media types makes schemathesis send real images in positive cases (negative cases still
send anything), so submissions succeed and the links of their 202 answers lead the job routes to
real ids. Undecodable, truncated and hostile files are the table of tests/test_api_validation.py.

A media-type strategy fills a repeated file part (``style``) with one image rather than a list,
which goes out as a text field; so ``style`` declares no media type and its items, binary
strings, are drawn from real images by the ``binary`` format strategy instead.

A check of our own holds the submission form to its promise (api/forms.py): a schema-valid
submission is refused with 422 only for one of the three rules the schema leaves to the API.
"""

from __future__ import annotations

import io

import schemathesis
from hypothesis import strategies as st
from PIL import Image


def _image(fmt: str, index: int) -> bytes:
    image = Image.new("RGB", (48, 32), ((40 * index) % 256, 90, 200))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


# The refusals of a schema-valid submission the document states (api.forms): field → words in the message.
DOCUMENTED_REFUSALS = {
    "image_size": "shorter side would be under",
    "style_layer_weights": "style layers",
    "init_image": "init_method=image needs an init_image file",
}


@schemathesis.check
def schema_valid_submissions_are_accepted(ctx, response, case):
    """A positive case of POST /api/v1/jobs is not refused with 422 but for a documented rule."""
    if case.operation.label != "POST /api/v1/jobs" or response.status_code != 422:
        return None
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    error = response.json()["error"]
    words = DOCUMENTED_REFUSALS.get(error["field"])
    if words is None or words not in error["message"]:
        raise AssertionError(f"a schema-valid submission was refused: {error}")
    return None


IMAGES = [_image(fmt, i) for fmt in ("PNG", "JPEG", "WEBP") for i in range(4)]
for _media_type in ("image/png", "image/jpeg", "image/webp"):
    schemathesis.openapi.media_type(_media_type, st.sampled_from(IMAGES))
schemathesis.openapi.format("binary", st.sampled_from(IMAGES))
