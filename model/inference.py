"""Score a whole video with a trained model: clip features (T, D) -> clip scores (T,).

CLAWS Net scores exactly the training windows (model/windows.py: b consecutive clips, the last
window padded cyclically with the video's own clips) and drops the padded positions, so a video
scored alone gets the same curve as inside a batch job (DESIGN.md "Batches and NSM windows").
The MIL baseline scores its 32 segments and gives each clip its segment's score. Frame curves
come from claws.data.clips.clip_scores_to_frame_scores, not from here.

Shapes: T clips, D feature dim, W windows, b clips per window.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from claws.model.claws import ClawsNet
from claws.model.mil import MilNet, clip_segments, segment_features
from claws.model.windows import video_windows

DEFAULT_WINDOW = 64  # paper 4.3: batch size b = 64 feature vectors
WINDOWS_PER_CHUNK = 256  # windows scored per forward pass; bounds memory on very long videos


@torch.no_grad()
def clip_scores(model: nn.Module, features: Tensor, window: int = DEFAULT_WINDOW) -> Tensor:
    """Anomaly score of every clip of one video.

    Args:
        model: a ClawsNet or MilNet; it is put in eval mode (no dropout) by this call.
        features: (T, D) normalized clip features of one video, on the model's device.
        window: b, clips per window; must equal the training window for CLAWS Net (the
            checkpoint's config says which). Ignored by MIL, which uses its segments.

    Returns:
        (T,) float scores in [0, 1] on the features' device.
    """
    if features.ndim != 2 or len(features) == 0:
        raise ValueError(f"expected clip features (T >= 1, D), got {tuple(features.shape)}")
    model.eval()
    features = features.to(next(model.parameters()).dtype)  # float16 storage -> model dtype
    if isinstance(model, MilNet):
        return _mil_clip_scores(model, features)
    if isinstance(model, ClawsNet):
        return _claws_clip_scores(model, features, window)
    raise TypeError(f"cannot score with a {type(model).__name__}; expected ClawsNet or MilNet")


def _claws_clip_scores(model: ClawsNet, features: Tensor, window: int) -> Tensor:
    windows = video_windows(len(features), window)
    index = windows.clip_index.to(features.device)
    chunks = []
    for start in range(0, len(index), WINDOWS_PER_CHUNK):
        batch = features[index[start : start + WINDOWS_PER_CHUNK]]  # (W, b, D)
        chunks.append(model(batch).scores)
    scores = torch.cat(chunks)  # (W, b)
    # windows are consecutive and only the last one is padded, so the valid positions are the
    # first T: a slice, not a boolean mask (whose size a GPU would have to report to the host)
    return scores.reshape(-1)[: len(features)]


def _mil_clip_scores(model: MilNet, features: Tensor) -> Tensor:
    segments = segment_features(features, model.num_segments).unsqueeze(0)  # (1, S, D)
    scores = model(segments).scores[0]  # (S,)
    owner = clip_segments(len(features), model.num_segments).to(features.device)
    return scores[owner]
