"""The top floor: the trainer, run orchestration, configs, checkpoints, distributed set-up and logs.

Nothing here names a kind of data: modalities (``contrastkit.modalities``) and evaluation
protocols (``contrastkit.eval.protocols``) are called through their interfaces.
"""
