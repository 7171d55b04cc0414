"""Dreamer's options (the config block `dreamer.*`), with the defaults of the paper's table 16.

Where table 16 is silent the defaults are those of dreamer-pytorch (the paper's base code): chunk length 50,
RSSM min std 0.1, actor init std 5 / min std 1e-4 / mean scale 5, CNN depth 32 (a 1024-dim conv embedding).
The loop options (seed episodes, collect interval, batch, chunk, exploration noise) are read by the agent of the
command line (dreamer/family.py) and the trainer; the rest by `Dreamer` itself. Table 16's action repeat 2 is the
DMControl suite's own (dream_mpc/envs/dmcontrol.py) and its experience size 1e6 the root key `buffer_size`.
"""

from dataclasses import dataclass

from dream_mpc.options import option


@dataclass
class DreamerOptions:
    # ---------------------------------------------------------------- networks
    belief_size: int = option(200, "size of the GRU's deterministic belief h", low=1)
    state_size: int = option(30, "size of the Gaussian stochastic state s", low=1)
    hidden_size: int = option(200, "width of the RSSM's, heads' and actor's hidden layers", low=1)
    embedding_size: int = option(1024, "observation embedding size (pixels: a linear map if not 32 x cnn_depth)", low=1)
    cnn_depth: int = option(32, "channels of the first conv layer (doubled per layer: 32-64-128-256)", low=1)
    min_std: float = option(0.1, "minimum std of the RSSM's prior and posterior", low=0, low_open=True)
    actor_init_std: float = option(5.0, "actor's pre-tanh std at initialisation", low=0, low_open=True)
    actor_min_std: float = option(1e-4, "actor's minimum pre-tanh std", low=0, low_open=True)
    actor_mean_scale: float = option(5.0, "actor's pre-tanh mean is scale * tanh(mean / scale)", low=0, low_open=True)
    eval_action: str = option(
        "mode",
        "the actor's action at evaluation: mode (the most likely of 100 samples, DreamerV1), mean (tanh of the mean), "
        "or sample",
        choices=("mode", "mean", "sample"),
    )
    # ---------------------------------------------------------------- losses
    free_nats: float = option(3.0, "KL below this many nats is not penalised", low=0)
    free_nats_mode: str = option(
        "per_step",
        "per_step: mean of max(KL_t, free nats) (dreamer-pytorch); batch_mean: max(mean KL, free nats) (Dreamer TF)",
        choices=("per_step", "batch_mean"),
    )
    kl_scale: float = option(1.0, "weight of the KL term (beta)", low=0)
    bit_depth: int = option(5, "bits kept of each 8-bit pixel before dequantisation noise", low=1, high=8)
    discount: float = option(0.99, "discount gamma of imagined returns", low=0, high=1)
    return_lambda: float = option(0.95, "lambda of the lambda-return (horizon discount factor)", low=0, high=1)
    imagination_horizon: int = option(15, "imagined steps per start state for actor and value learning", low=1)
    # ---------------------------------------------------------------- optimisation
    model_lr: float = option(
        6e-4, "Adam learning rate of the world model (dreamer-pytorch: 1e-3)", low=0, low_open=True
    )
    actor_lr: float = option(8e-5, "Adam learning rate of the actor", low=0, low_open=True)
    value_lr: float = option(8e-5, "Adam learning rate of the value model", low=0, low_open=True)
    adam_eps: float = option(1e-7, "Adam epsilon of the three optimisers", low=0, low_open=True)
    grad_clip_norm: float = option(100.0, "gradient-norm clip of each of the three updates", low=0, low_open=True)
    # ---------------------------------------------------------------- the training loop (read by the trainer)
    batch_size: int = option(50, "sequences per update", low=1)
    chunk_length: int = option(50, "steps per training sequence (the buffer's sequence length)", low=2)
    seed_episodes: int = option(5, "random episodes collected before the first update", low=0)
    collect_interval: int = option(100, "updates between two collected episodes", low=1)
    expl_noise: float = option(0.3, "std of the Gaussian noise added to actions while collecting", low=0)
