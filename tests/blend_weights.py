"""Blend-engine test artifacts in the real formats, and the ``blend_*`` fixtures.

The decoder's key layout is written out here from pytorch-AdaIN's published definition (convs at
indices 1, 5, 8, 11, 14, 18, 21, 25, 28), independently of ``consumer.engines.adain``, so a
decoder built with the wrong layout fails to load. The encoder is ``tests/weights.py``'s full
``vgg_normalised.pth`` (to relu5_4; the engine uses it to relu4_1).
"""

from __future__ import annotations

import http.server
import math
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# (index, in, out) of each 3×3 conv in pytorch-AdaIN's decoder.pth.
DECODER_CONVS = [
    (1, 512, 256), (5, 256, 256), (8, 256, 256), (11, 256, 256), (14, 256, 128),
    (18, 128, 128), (21, 128, 64), (25, 64, 64), (28, 64, 3),
]  # fmt: skip


OUTPUT_GAIN = 1.5


def decoder_tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    """A decoder.pth state dict with the real keys and shapes, He-initialised from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for index, cin, cout in DECODER_CONVS:
        state[f"{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=generator) * math.sqrt(
            2 / (cin * 9)
        )
        state[f"{index}.bias"] = torch.randn(cout, generator=generator) * 0.01
    # Like a trained decoder, put the output mostly inside [0, 1] (mid-grey ± texture), so that
    # tests compare pictures rather than images clamped flat to black.
    state["28.weight"] *= OUTPUT_GAIN
    state["28.bias"] += 0.5
    return state


def write_decoder_file(path: Path, seed: int = 0) -> Path:
    torch.save(decoder_tensors(seed), path)
    return path


def random_image(width: int, height: int, seed: int) -> Image.Image:
    """Smooth random colours (a blurred upsampled grid), closer to a photo than white noise."""
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(grid, "RGB").resize((width, height), Image.Resampling.BICUBIC)


@pytest.fixture(scope="session")
def blend_pair(vgg_weight_file, tmp_path_factory) -> tuple[Path, Path]:
    """(vgg_normalised.pth, decoder.pth): random weights in pytorch-AdaIN's formats."""
    encoder = vgg_weight_file("vgg19", "adain")
    decoder = write_decoder_file(tmp_path_factory.mktemp("blend") / "decoder.pth")
    return encoder, decoder


@pytest.fixture
def blend_config(blend_pair, tmp_path):
    """An EngineConfig naming the AdaIN pair, on CPU in fp32 (tests compare pixels exactly), with
    real (not random-mode) loading."""
    from stylequeue.config import EngineConfig

    encoder, decoder = blend_pair
    return EngineConfig(
        device="cpu",
        precision="fp32",
        random_weights=False,
        cache_dir=tmp_path / "cache",
        blend_model=f"{encoder},{decoder}",
    )


@pytest.fixture(scope="session")
def blend_model(blend_pair):
    """The pair loaded once through the real loader (BlendModel)."""
    from consumer.engines.blend_model import load_adain_pair

    return load_adain_pair(*blend_pair)


@pytest.fixture
def blend_engine(blend_model, blend_config):
    """A fresh engine (empty style cache) around the session's loaded pair."""
    from consumer.engines.blend_engine import BlendEngine

    return BlendEngine(blend_config, blend_model, torch.device("cpu"))


@pytest.fixture
def blend_single_thread():
    """One intra-op thread while the test runs: on 16–64 px tensors, extra OpenMP threads only
    spin (20× slower steps on a loaded 2-core machine) and change no result."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with ``Range: bytes=a-b`` support, as S3-backed hosts (COCO's) answer."""

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def end_headers(self) -> None:
        self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def do_GET(self) -> None:
        spec = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not spec or not path.is_file():
            return super().do_GET()
        first, last = (int(x) for x in spec.removeprefix("bytes=").split("-"))
        data = path.read_bytes()[first : last + 1]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {first}-{first + len(data) - 1}/{path.stat().st_size}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def blend_http_server(tmp_path):
    """``(root, base_url)``: an HTTP server on 127.0.0.1 serving ``root`` with byte ranges."""
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **kw: _RangeHandler(*a, directory=str(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
