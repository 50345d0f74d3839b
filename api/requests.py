"""The API's request class: multipart limits that answer with their own error, not Werkzeug's.

Werkzeug refuses a form with too many parts or a text field over its memory limit with a bare
``413 Request Entity Too Large``, which the error handler could only describe as "request too
large": a client sending 10,000 tiny parts or one 600 KB field was told about the 60 MB request
limit it never came near. Here each limit is checked by the code that knows which one was hit, and
the :class:`~api.uploads.TooLarge` it raises names the limit, its configured value and its setting.

A part without a name (``Content-Disposition: form-data`` and no ``name=``) is refused as a bad
request: Werkzeug would keep it under the key ``None``.
"""

from __future__ import annotations

from typing import Any

from flask import Request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, MultiPartParser

from api.uploads import BadRequest, TooLarge


class LimitedFormParser(FormDataParser):
    """Werkzeug's decoder is given only the field-size limit, so a ``RequestEntityTooLarge`` from it
    can only mean that one; the part count is checked on the parsed form. Both are bounded by the
    request size, which the WSGI layer (:mod:`api.middleware`) has checked before parsing starts."""

    def _parse_multipart(
        self, stream: Any, mimetype: str, content_length: int | None, options: dict[str, str]
    ) -> tuple[Any, MultiDict, MultiDict]:
        parser = MultiPartParser(
            stream_factory=self.stream_factory,
            max_form_memory_size=self.max_form_memory_size,
            max_form_parts=None,
            cls=self.cls,
            buffer_size=_buffer_size(self.max_form_memory_size),
        )
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        try:
            form, files = parser.parse(stream, boundary, content_length)
        except RequestEntityTooLarge:
            limit = self.max_form_memory_size or 0
            raise TooLarge(
                f"a text field is larger than the limit of {limit} bytes (STYLEQUEUE_MAX_FIELD_BYTES)"
            ) from None
        count = len(list(form.items(multi=True))) + len(list(files.items(multi=True)))
        if self.max_form_parts is not None and count > self.max_form_parts:
            limit = self.max_form_parts
            raise TooLarge(f"the form has {count} parts; the limit is {limit} (STYLEQUEUE_MAX_FORM_PARTS)")
        if None in form or None in files or "" in form or "" in files:
            raise BadRequest('a multipart part has no name (Content-Disposition: form-data; name="…")')
        return stream, form, files


def _buffer_size(field_limit: int | None) -> int:
    """The parser's read size: Werkzeug's decoder also applies the field limit to its unparsed
    buffer, file data included, so a read as large as the limit would refuse any file."""
    return 64 * 1024 if field_limit is None else max(1024, min(64 * 1024, field_limit // 4))


class ApiRequest(Request):
    form_data_parser_class = LimitedFormParser
