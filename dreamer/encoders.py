"""The observation path: an encoder o -> e and a decoder (h, s) -> o for pixels (C x 64 x 64) or state vectors.

Pixels (PlaNet/Dreamer): 4 convs (kernel 4, stride 2, ReLU; depth d, 2d, 4d, 8d) flatten to 32 d features
(1024 for d = 32), linearly mapped to the embedding size if that differs; the decoder maps [h, s] linearly to
the embedding, reshapes it to (E, 1, 1) and upsamples with 4 transposed convs (kernels 5, 5, 6, 6, stride 2:
1 -> 5 -> 13 -> 30 -> 64 pixels). States: 3-layer ELU MLPs. The decoder's output is the mean of a unit
Gaussian, so the reconstruction loss is a squared error.
"""

import torch.nn as nn

from dream_mpc.errors import UserError


def mlp(inp, hidden, out, layers):
    """`layers` ELU hidden layers of width `hidden`, then a linear output."""
    mods, width = [], inp
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.ELU()]
        width = hidden
    return nn.Sequential(*mods, nn.Linear(width, out))


def _flat(x, dims):
    """(..., *dims) -> ((prod ...), *dims) and the leading shape, for conv layers that take one batch dim."""
    lead = x.shape[: x.dim() - dims]
    return x.reshape(-1, *x.shape[x.dim() - dims :]), lead


class ConvEncoder(nn.Module):
    def __init__(self, channels, embedding_size, depth=32):
        super().__init__()
        d = depth
        self.convs = nn.Sequential(
            nn.Conv2d(channels, d, 4, 2), nn.ReLU(),
            nn.Conv2d(d, 2 * d, 4, 2), nn.ReLU(),
            nn.Conv2d(2 * d, 4 * d, 4, 2), nn.ReLU(),
            nn.Conv2d(4 * d, 8 * d, 4, 2), nn.ReLU(),
        )  # fmt: skip
        features = 32 * d  # 8 d channels x 2 x 2
        self.proj = nn.Identity() if embedding_size == features else nn.Linear(features, embedding_size)

    def forward(self, obs):
        """Preprocessed pixels (..., C, 64, 64) -> (..., E)."""
        x, lead = _flat(obs, 3)
        return self.proj(self.convs(x).flatten(1)).view(*lead, -1)


class ConvDecoder(nn.Module):
    def __init__(self, feature_size, channels, embedding_size, depth=32):
        super().__init__()
        d = depth
        self.embedding_size = embedding_size
        self.fc = nn.Linear(feature_size, embedding_size)  # no activation, as in PlaNet
        self.deconvs = nn.Sequential(
            nn.ConvTranspose2d(embedding_size, 4 * d, 5, 2), nn.ReLU(),
            nn.ConvTranspose2d(4 * d, 2 * d, 5, 2), nn.ReLU(),
            nn.ConvTranspose2d(2 * d, d, 6, 2), nn.ReLU(),
            nn.ConvTranspose2d(d, channels, 6, 2),
        )  # fmt: skip

    def forward(self, features):
        """[h, s] (..., F) -> the mean image (..., C, 64, 64)."""
        x, lead = _flat(features, 1)
        img = self.deconvs(self.fc(x).view(-1, self.embedding_size, 1, 1))
        return img.view(*lead, *img.shape[1:])


class MLPEncoder(nn.Module):
    def __init__(self, obs_dim, embedding_size, hidden_size):
        super().__init__()
        self.net = mlp(obs_dim, hidden_size, embedding_size, 2)

    def forward(self, obs):
        return self.net(obs)


class MLPDecoder(nn.Module):
    def __init__(self, feature_size, obs_dim, hidden_size):
        super().__init__()
        self.net = mlp(feature_size, hidden_size, obs_dim, 2)

    def forward(self, features):
        return self.net(features)


def observation_networks(obs_shape, feature_size, opt):
    """(encoder, decoder) for an observation shape: (C, 64, 64) pixels or (D,) states."""
    if len(obs_shape) == 3:
        if tuple(obs_shape[1:]) != (64, 64):
            raise UserError(
                f"Dreamer's conv encoder needs 64x64 pixels, got an observation of shape {tuple(obs_shape)}"
            )
        C = obs_shape[0]
        return (
            ConvEncoder(C, opt.embedding_size, opt.cnn_depth),
            ConvDecoder(feature_size, C, opt.embedding_size, opt.cnn_depth),
        )
    if len(obs_shape) == 1:
        D = obs_shape[0]
        return MLPEncoder(D, opt.embedding_size, opt.hidden_size), MLPDecoder(feature_size, D, opt.hidden_size)
    raise UserError(
        f"Dreamer reads (C, 64, 64) pixels or (D,) state vectors, got an observation of shape {tuple(obs_shape)}"
    )
