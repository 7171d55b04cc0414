"""RunningScale: an EMA of the 5th-95th percentile range, used to normalise the policy objective."""

import torch


class RunningScale:
    def __init__(self, cfg, device="cpu"):
        self.tau = cfg.tau
        self.value = torch.ones(1, device=device)

    @torch.no_grad()
    def update(self, x):
        """x: (B, 1) values of one time step; percentiles over the batch."""
        q = torch.quantile(x.float().reshape(x.shape[0], -1), torch.tensor([0.05, 0.95], device=x.device), dim=0)
        self.value.lerp_((q[1] - q[0]).clamp(min=1.0).reshape(-1)[:1], self.tau)

    def __call__(self, x):
        return x * (1.0 / self.value)

    def state_dict(self):
        return {"value": self.value.clone()}

    def load_state_dict(self, state):
        self.value.copy_(state["value"])

    def __repr__(self):
        return f"RunningScale(S: {self.value.item():.4f})"
