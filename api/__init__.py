"""The HTTP API: Flask application factory (``api.app.create_app``), routes, service layer, uploads."""
