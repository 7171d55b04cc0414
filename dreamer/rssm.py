"""The recurrent state-space model (RSSM) of PlaNet and Dreamer.

A latent is a deterministic belief h (a GRU state) and a stochastic state s ~ N(mean, std):
    h_t = GRU(h_{t-1}, ELU(W [s_{t-1}, a_{t-1}]))
    prior      p(s_t | h_t)       = N(mu_p(h_t), softplus(.) + min_std)       (imagination, planning)
    posterior  q(s_t | h_t, e_t)  = N(mu_q(h_t, e_t), softplus(.) + min_std)  (filtering, e_t = embed(o_t))
States are reparameterised samples so gradients reach actions and parameters through them.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class RSSM(nn.Module):
    def __init__(self, belief_size, state_size, action_dim, hidden_size, embedding_size, min_std=0.1):
        super().__init__()
        self.belief_size, self.state_size, self.action_dim, self.min_std = belief_size, state_size, action_dim, min_std
        self.embed_state_action = nn.Linear(state_size + action_dim, belief_size)
        self.gru = nn.GRUCell(belief_size, belief_size)
        self.prior_net = nn.Sequential(
            nn.Linear(belief_size, hidden_size), nn.ELU(), nn.Linear(hidden_size, 2 * state_size)
        )
        self.posterior_net = nn.Sequential(
            nn.Linear(belief_size + embedding_size, hidden_size), nn.ELU(), nn.Linear(hidden_size, 2 * state_size)
        )

    def _gaussian(self, raw):
        mean, std = raw.chunk(2, -1)
        return mean, F.softplus(std) + self.min_std

    def belief(self, h, s, a):
        """h_t from (h_{t-1}, s_{t-1}, a_{t-1}); any leading dims (flattened for the GRU cell)."""
        lead = h.shape[:-1]
        x = F.elu(self.embed_state_action(torch.cat([s, a], -1)))
        h = self.gru(x.reshape(-1, x.shape[-1]), h.reshape(-1, h.shape[-1]))
        return h.view(*lead, -1)

    def prior(self, h):
        """(mean, std) of p(s | h)."""
        return self._gaussian(self.prior_net(h))

    def posterior(self, h, embed):
        """(mean, std) of q(s | h, e)."""
        return self._gaussian(self.posterior_net(torch.cat([h, embed], -1)))

    @staticmethod
    def sample(mean, std, eps=None):
        """A reparameterised sample mean + std * eps, eps standard normal unless given (a plan's common noise)."""
        return mean + std * (torch.randn_like(mean) if eps is None else eps)

    def imagine_step(self, h, s, a, sample=True, eps=None):
        """One prior step: (h', s') with s' drawn from p(s' | h') (with `eps` if given) or its mean (sample=False)."""
        h = self.belief(h, s, a)
        mean, std = self.prior(h)
        return h, (self.sample(mean, std, eps) if sample else mean)

    def observe(self, embeds, actions, continuations=None, h=None, s=None):
        """Filter a sequence with the posterior. embeds (T, B, E) of o_0..o_{T-1}; actions (T, B, A) where a_t was
        taken at o_t; continuations (T, B): c_t = 0 where row t+1 starts a new episode (the carried state is
        zeroed). The state before o_0 is (h, s, a) = 0 unless h, s are given (then a_{-1} is taken as 0 too).
        Returns a dict of (T, B, .) tensors: h, s (posterior samples), post_mean, post_std, prior_mean, prior_std."""
        T, B = embeds.shape[:2]
        zeros = embeds.new_zeros
        h = zeros(B, self.belief_size) if h is None else h
        s = zeros(B, self.state_size) if s is None else s
        a = zeros(B, self.action_dim)
        out = {k: [] for k in ("h", "s", "post_mean", "post_std", "prior_mean", "prior_std")}
        for t in range(T):
            h = self.belief(h, s, a)
            prior_mean, prior_std = self.prior(h)
            post_mean, post_std = self.posterior(h, embeds[t])
            s = self.sample(post_mean, post_std)
            for k, v in zip(out, (h, s, post_mean, post_std, prior_mean, prior_std)):
                out[k].append(v)
            a = actions[t]
            if continuations is not None:  # the next row begins another episode: start it from zeros
                keep = continuations[t].unsqueeze(-1).to(h.dtype)
                h, s, a = h * keep, s * keep, a * keep
        return {k: torch.stack(v) for k, v in out.items()}
