"""Training CLAWS Net (and the MIL baseline) from video-level labels: the config, the training
data in memory, one step's losses, the loop with its checkpoints, resume and run folders.
"""
