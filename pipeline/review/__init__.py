"""The review page of a scores folder: a static offline site (triage table, each video beside
its curve) and the browser-playable previews of its footage.
"""
