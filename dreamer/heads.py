"""Heads on the model state [h, s]: the reward model r(h, s) (2 hidden layers) and the value model V(h, s)
(3 hidden layers), ELU, as in Dreamer. The reward model reads the state *reached* by a transition: r_t is
predicted from (h_{t+1}, s_{t+1})."""

import torch
import torch.nn as nn

from dreamer.encoders import mlp


class StateHead(nn.Module):
    """A scalar (..., 1) from (h, s)."""

    def __init__(self, feature_size, hidden_size, layers):
        super().__init__()
        self.net = mlp(feature_size, hidden_size, 1, layers)

    def forward(self, h, s):
        return self.net(torch.cat([h, s], -1))


def reward_model(feature_size, hidden_size):
    return StateHead(feature_size, hidden_size, 2)


def value_model(feature_size, hidden_size):
    return StateHead(feature_size, hidden_size, 3)
