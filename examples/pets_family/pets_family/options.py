from dataclasses import dataclass

from dream_mpc.options import option


@dataclass
class PETSOptions:
    ensemble_size: int = option(5, "members of the probabilistic dynamics + reward ensemble", low=1)
    hidden_size: int = option(200, "width of each member's hidden layers", low=1)
    num_layers: int = option(3, "hidden layers per member", low=1)
    lr: float = option(1e-3, "Adam learning rate of the ensemble", low=0, low_open=True)
    weight_decay: float = option(1e-5, "Adam weight decay of the ensemble", low=0)
    batch_size: int = option(256, "transitions per update (each member bootstraps its own resample)", low=1)
    sequence_length: int = option(1, "transitions per sampled chunk (the buffer's sequence length)", low=1)
    discount: float = option(0.99, "discount of the planners' returns", low=0, high=1)
    propagation: str = option(
        "moment",
        "moment: one Gaussian matched to the ensemble's moments (epistemic + aleatoric); mean: the ensemble's "
        "mean, deterministic",
        choices=("moment", "mean"),
    )
