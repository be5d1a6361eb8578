"""The lab: small latent reasoners trained from scratch by widthdepth itself (torch, CPU).

Depth is real inside them (a shared block iterated t times, read out after every iteration) and so
is width (stochastic latent trajectories, sampled W at a time). See `model.py` and `train.py`.
"""
