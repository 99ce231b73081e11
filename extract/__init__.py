"""Video to features: decoding, the C3D network, the batch extraction engine, synthetic videos."""
