"""What is on disk and what it means: dataset adapters, annotations, the feature-shard format."""
