"""Pixel preprocessing of PlaNet and Dreamer: uint8 images reduced to `bit_depth` bits, centred on 0, plus
uniform dequantisation noise of one quantisation step (so the decoder cannot fit the quantisation levels).
The buffer keeps the raw uint8 frames (1 byte a pixel); preprocessing happens where a batch is used."""

import torch


def preprocess(obs, bit_depth=5, noise=True, generator=None):
    """uint8 (..., C, H, W) in [0, 255] -> float in [-0.5, 0.5): floor(x / 2^(8-b)) / 2^b - 0.5 + U(0, 2^-b)."""
    levels = 2**bit_depth
    x = torch.floor(obs.float() / 2 ** (8 - bit_depth)) / levels - 0.5
    if noise:
        x = x + torch.rand(x.shape, generator=generator, device=x.device) / levels
    return x


def postprocess(x, bit_depth=5):
    """The inverse for display or storage: float in [-0.5, 0.5] -> uint8 on the 2^b grid."""
    levels = 2**bit_depth
    q = torch.floor((x + 0.5) * levels).clamp(0, levels - 1)
    return (q * 2 ** (8 - bit_depth)).to(torch.uint8)
