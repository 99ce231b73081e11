"""The `claws watch` job: live streams decoded, cut into clips and scored as they arrive, with provisional and final scores, events as they happen, recordings and reconnects."""
