"""Video to features: decoding, the C3D network, the batch extraction engine, the extraction and
import jobs, synthetic videos."""
