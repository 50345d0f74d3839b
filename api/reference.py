"""The interactive API reference: Swagger UI over ``/api/v1/openapi.json``, served offline.

The page's assets come from the installed ``flask-openapi3-swagger`` package (Swagger UI 5, which
renders OpenAPI 3.1; ``swagger-ui-bundle`` on PyPI stops at 4.15, which cannot), never from a CDN,
so the reference works on a machine without internet access.
"""

from __future__ import annotations

from pathlib import Path

import flask_openapi3_swagger
from flask import Blueprint, Response, send_from_directory

from api.openapi import doc

ASSETS = Path(flask_openapi3_swagger.__file__).resolve().parent / "templates" / "swagger"
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>stylequeue API reference</title>
  <link rel="icon" href="/api/v1/docs/assets/images/swagger.svg">
  <link rel="stylesheet" href="/api/v1/docs/assets/css/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api/v1/docs/assets/js/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({url: "/api/v1/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
  </script>
</body>
</html>
"""

bp = Blueprint("reference", __name__, url_prefix="/api/v1/docs")


@bp.get("")
@doc(
    {200: (None, "the interactive API reference (Swagger UI, served offline)")},
    operation_id="apiReference",
    guarded=False,
    media=("text/html",),
)
def reference() -> Response:
    """The interactive API reference (Swagger UI)."""
    return Response(PAGE, mimetype="text/html")


@bp.get("/assets/<path:asset>")
@doc(
    {200: (None, "a script, stylesheet, source map or image of the reference page")},
    (404,),
    operation_id="apiReferenceAsset",
    guarded=False,
    media=("text/javascript", "text/css", "image/svg+xml", "application/json"),
)
def asset(asset: str) -> Response:
    """One of the reference page's scripts, stylesheets or images."""
    # send_from_directory refuses a path that leaves ASSETS (safe_join) like a missing file: 404.
    return send_from_directory(ASSETS, asset, max_age=86400)
