"""The `claws` verbs, one light module each: its parser (`register`) and a `run` that builds the
job's typed arguments and imports the heavy job only when it runs; no command imports another.
"""
