"""Conversions between PIL images and tensors, resizing, and colour preservation."""

from __future__ import annotations

import torch
from PIL import Image

# BT.601 RGB→YUV; luminance-only transfer keeps the content's U and V.
_RGB_TO_YUV = torch.tensor([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])


def size_for_longest(width: int, height: int, longest: int) -> tuple[int, int]:
    scale = longest / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_longest(image: Image.Image, longest: int) -> Image.Image:
    size = size_for_longest(image.width, image.height, longest)
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS)


def to_tensor(image: Image.Image, device: torch.device | str = "cpu") -> torch.Tensor:
    """RGB PIL image → float tensor 1×3×H×W in [0, 1]."""
    data = torch.frombuffer(bytearray(image.convert("RGB").tobytes()), dtype=torch.uint8)
    tensor = data.view(image.height, image.width, 3).permute(2, 0, 1).unsqueeze(0)
    return tensor.to(device=device, dtype=torch.float32).div_(255.0)


def to_image(tensor: torch.Tensor) -> Image.Image:
    """Float tensor (1×)3×H×W in [0, 1] → RGB PIL image (values clamped)."""
    if tensor.dim() == 4:
        tensor = tensor[0]
    data = tensor.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    array = data.permute(1, 2, 0).contiguous().cpu().numpy()
    return Image.fromarray(array, "RGB")


def rgb_to_yuv(rgb: torch.Tensor) -> torch.Tensor:
    matrix = _RGB_TO_YUV.to(rgb.device, rgb.dtype)
    return torch.einsum("ij,bjhw->bihw", matrix, rgb)


def yuv_to_rgb(yuv: torch.Tensor) -> torch.Tensor:
    matrix = torch.linalg.inv(_RGB_TO_YUV).to(yuv.device, yuv.dtype)
    return torch.einsum("ij,bjhw->bihw", matrix, yuv)


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """Y channel replicated to 3 channels, so a colour network sees a grey image."""
    return rgb_to_yuv(rgb)[:, :1].expand(-1, 3, -1, -1)


def preserve_colors(content: torch.Tensor, stylized: torch.Tensor) -> torch.Tensor:
    """Luminance from ``stylized``, chrominance (U, V) from ``content`` (Gatys et al. 2016)."""
    if content.shape[-2:] != stylized.shape[-2:]:
        content = torch.nn.functional.interpolate(
            content, size=stylized.shape[-2:], mode="bilinear", align_corners=False
        )
    y = rgb_to_yuv(stylized)[:, :1]
    uv = rgb_to_yuv(content)[:, 1:]
    return yuv_to_rgb(torch.cat([y, uv], dim=1)).clamp(0, 1)


def matched_luminance(rgb: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Luminance of ``rgb`` shifted and scaled to the mean and spread of ``reference``'s: Gatys et
    al. (2016) match the style's to the content's this way before a luminance-only transfer, so the
    style's overall brightness does not leak into the result."""
    y = rgb_to_yuv(rgb)[:, :1]
    ref = rgb_to_yuv(reference)[:, :1]
    scale = ref.std() / y.std().clamp_min(1e-6)
    return ((y - y.mean()) * scale + ref.mean()).clamp(0, 1).expand(-1, 3, -1, -1)
