"""Shared pytest fixtures. Fixture families live in their own modules and are imported here.

- ``vgg_*``: random VGG weight files in the real formats (tests/weights.py)
- ``blend_*``: blend-engine artifacts
- services (broker, Redis, S3, the running stack): tests/services.py
"""

import os

import pytest

# Engines in tests use small random networks unless a test says otherwise.
os.environ.setdefault("STYLEQUEUE_RANDOM_WEIGHTS", "1")

from blend_weights import (  # noqa: E402,F401
    blend_config,
    blend_engine,
    blend_http_server,
    blend_model,
    blend_pair,
    blend_single_thread,
)
from services import kafka_bootstrap, redis_url, s3_endpoint, service_env, stack  # noqa: E402,F401


@pytest.fixture(scope="session")
def vgg_weight_file(tmp_path_factory):
    """Factory ``(arch, fmt) -> path`` of a random VGG file in the real format, written once per session."""
    from weights import write_vgg_file

    root = tmp_path_factory.mktemp("vgg_weights")
    made = {}

    def make(arch: str = "vgg19", fmt: str = "torchvision"):
        if (arch, fmt) not in made:
            made[(arch, fmt)] = write_vgg_file(root / f"{arch}-{fmt}.pth", arch, fmt)
        return made[(arch, fmt)]

    return make
