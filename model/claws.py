"""CLAWS Net (Zaheer et al., ECCV 2020, sections 3.2-3.3): backbone, normalcy suppression, scores.

Shapes: B windows, T clips per window (b=64 in the paper), D feature dim, Z1/Z2 the FC sizes.

Backbone (BBN, section 3.2): two FC modules, each FC -> ReLU -> dropout, then FC -> sigmoid.
Normalcy suppression (NSM, section 3.3): for each module, an FC of the module's size applied to
the module's input, a softmax over the temporal dimension T (each of the Z columns of the
T x Z matrix sums to 1), multiplied element-wise with the module's FC output (after its ReLU;
the softmax is positive, so ReLU and product commute) before the dropout. NSM-1 and NSM-2 can each be
switched off (Table 3). With `nsm_window_scaled` the softmax is multiplied by T (columns sum to T),
so an even suppression leaves the module output unchanged; the paper's columns summing to 1 scale
the module output by about 1/T, and the head's input by 1/T^2 with both NSMs, which on real
features left the scores flat for thousands of iterations (README). The intermediate
representation used by the clustering loss (Fig. 2) is FC-1 output times NSM-1 (FC-1 output alone
when NSM-1 is off), before dropout.

The paper gives neither the dropout rate nor the initialisation. Defaults here: dropout 0.6, the
rate of Sultani et al. (2018) whose features, segment sizes and losses CLAWS builds on and which
peers use for this head; Xavier-uniform weights with zero biases (the Glorot family used by
Sultani's Keras model, kept scale-preserving for the 2048 -> 512 -> 32 -> 1 stack).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

INITS = ("xavier_uniform", "xavier_normal", "kaiming_uniform", "torch_default")


class ClawsOutput(NamedTuple):
    """What one forward pass returns; `scores` is the anomaly score of every clip."""

    scores: Tensor  # (B, T) in [0, 1]
    representation: Tensor  # (B, T, Z1) FC-1 output x NSM-1, the clustering input (Fig. 2)
    suppression1: Tensor | None  # (B, T, Z1) NSM-1 softmax over T, None when NSM-1 is off
    suppression2: Tensor | None  # (B, T, Z2) NSM-2 softmax over T, None when NSM-2 is off


def init_linear(layer: nn.Linear, init: str) -> None:
    """Initialise one Linear layer in place with a named scheme; biases start at zero."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {INITS}")
    if init == "torch_default":
        return
    if init == "xavier_uniform":
        nn.init.xavier_uniform_(layer.weight)
    elif init == "xavier_normal":
        nn.init.xavier_normal_(layer.weight)
    else:  # kaiming_uniform
        nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
    nn.init.zeros_(layer.bias)


class FCModule(nn.Module):
    """FC -> ReLU -> (x NSM softmax over time) -> dropout; one module of the backbone."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float, suppression: bool,
                 window_scaled: bool = False) -> None:
        super().__init__()
        self.window_scaled = window_scaled
        self.fc = nn.Linear(in_dim, out_dim)
        self.nsm = nn.Linear(in_dim, out_dim) if suppression else None
        self.dropout = nn.Dropout(dropout)

    def suppressed(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """(B, T, in) -> (ReLU(FC) x NSM before dropout (B, T, out), NSM weights or None)."""
        hidden = torch.relu(self.fc(x))
        if self.nsm is None:
            return hidden, None
        weights = torch.softmax(self.nsm(x), dim=1)  # over T: each column sums to 1
        if self.window_scaled:  # columns sum to T: an even suppression is the identity
            weights = weights * x.shape[1]
        return hidden * weights, weights

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """(B, T, in) -> (output after dropout, output before dropout, NSM weights or None)."""
        hidden, weights = self.suppressed(x)
        return self.dropout(hidden), hidden, weights


class ClawsNet(nn.Module):
    """The CLAWS Net scorer: `forward(features (B, T, D)) -> ClawsOutput`.

    Args:
        feature_dim: D, 2048 for the paper's mean of fc6 pairs.
        hidden1: Z1, FC module 1 size (paper: 512).
        hidden2: Z2, FC module 2 size (paper: 32).
        dropout: dropout rate after each FC module (paper silent; 0.6 as Sultani et al.).
        nsm1: use normalcy suppression in module 1.
        nsm2: use normalcy suppression in module 2.
        init: weight initialisation, one of INITS.
        nsm_window_scaled: multiply each NSM's softmax by the window length T, so its columns
            sum to T instead of 1 (see the module docstring).
    """

    def __init__(
        self,
        feature_dim: int = 2048,
        hidden1: int = 512,
        hidden2: int = 32,
        dropout: float = 0.6,
        nsm1: bool = True,
        nsm2: bool = True,
        init: str = "xavier_uniform",
        nsm_window_scaled: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.feature_dim = feature_dim
        self.module1 = FCModule(feature_dim, hidden1, dropout, nsm1, nsm_window_scaled)
        self.module2 = FCModule(hidden1, hidden2, dropout, nsm2, nsm_window_scaled)
        self.head = nn.Linear(hidden2, 1)
        for layer in self.modules():
            if isinstance(layer, nn.Linear):
                init_linear(layer, init)

    def forward(self, features: Tensor) -> ClawsOutput:
        """Score every clip of every window.

        Args:
            features: (B, T, D) windows of consecutive clip features.

        Returns:
            ClawsOutput with scores (B, T) and the named intermediate tensors.
        """
        if features.ndim != 3 or features.shape[-1] != self.feature_dim:
            raise ValueError(
                f"ClawsNet expects features (B, T, {self.feature_dim}), got {tuple(features.shape)}"
            )
        x1, representation, p1 = self.module1(features)
        x2, _, p2 = self.module2(x1)
        scores = torch.sigmoid(self.head(x2)).squeeze(-1)  # (B, T)
        return ClawsOutput(scores, representation, p1, p2)

    @torch.no_grad()
    def representation(self, features: Tensor) -> Tensor:
        """Detached FC-1 x NSM-1 of (B, T, D) windows -> (B, T, Z1), for the epoch's k-means."""
        return self.module1.suppressed(features)[0]
