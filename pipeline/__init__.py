"""The jobs a user runs (extract, train, score, evaluate, demo) and the `claws` command."""
