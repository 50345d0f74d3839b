"""Shared pytest fixtures. Fixture families live in their own modules and are imported here.

- ``vgg_*``: random VGG weight files in the real formats (tests/weights.py)
- ``blend_*``: blend-engine artifacts
- services (broker, Redis, S3, the running stack): tests/services.py
"""

import os

# Engines in tests use small random networks unless a test says otherwise.
os.environ.setdefault("STYLEQUEUE_RANDOM_WEIGHTS", "1")
