"""Pure torch models: CLAWS Net, its losses, batched k-means, and the MIL baseline."""
