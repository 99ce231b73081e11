"""The review page of a scores folder or of a live folder written by `claws watch`: a static
offline site (triage table, each video or stretch beside its curve) and the browser-playable
previews of its footage.
"""
