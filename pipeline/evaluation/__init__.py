"""Evaluation against ground truth: frame metrics, the report folder (summary, metrics.json,
figures) and the job that gathers curves from a scores folder or a run.
"""
