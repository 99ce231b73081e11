"""What is on disk and what it means: dataset adapters, annotations, the feature-shard format,
clip arithmetic, atomic writes and the code version recorded with every output."""
