"""The jobs a user runs and the `claws` command: one folder per job (training/, scoring/,
watching/, evaluation/, review/), the verbs in commands/, and what every job shares at this level
(cli.py the dispatcher, lock.py folder locks, interrupt.py Ctrl-C, options.py option ranges,
metrics.py frame metrics). Job folders import only data, extract, model, these shared modules and the job folders
below them: training < scoring < watching < evaluation < review (tests/test_layout.py checks it).
"""
