"""Dreamer (Hafner et al., 2020) as a second world-model family: the paper's appendix D (docs/dreamer.md).

An RSSM learned from pixels or states, a reward model r(h, s) of the state reached, a value model V(h, s) and a
tanh-Gaussian actor learned from lambda-returns in imagination. `Dreamer` (agent.py) holds the networks and their
optimisers; `DreamerWorldModel` (world_model.py) lets every planner of `dream_mpc` plan through them.
"""
