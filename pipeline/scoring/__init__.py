"""Scoring: the inputs (shards, or raw footage extracted first) -> the curve (normalization,
clip scores, frame curve) -> events and the scores folder's files, driven once per video by the job.
"""
