"""Video to features: decoding, clip arithmetic, the C3D network, the batch extraction engine."""
