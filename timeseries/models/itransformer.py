"""iTransformer (Liu et al., ICLR 2024): attention across variate tokens, each the embedding of a whole lookback."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from polyformer.timeseries.models.attention_maps import encoder_attention
from polyformer.timeseries.models.encoder import Encoder
from polyformer.timeseries.models.norm import denormalize, normalize


class ITransformerNet(nn.Module):
    """The inverted Transformer forecaster.

    Each variate's `seq_len` lookback values become one token through `Linear(seq_len, d_model)`;
    with time features, each calendar feature's `seq_len` values become one more token (as the
    reference's `DataEmbedding_inverted` does). An encoder of post-norm layers mixes the tokens with
    any core mixer in its bidirectional form (softmax attention as published; `mamba` gives S-Mamba)
    and a per-token FFN; `Linear(d_model, pred_len)` projects each variate token to its horizon.

    Args:
        seq_len, pred_len: lookback and horizon lengths.
        d_model, n_heads, e_layers, d_ff, dropout, activation: encoder sizes (TSLib names).
        use_norm: per-variate instance normalisation of the window (and its inverse on the forecast).
        use_marks: turn time features, when the data has them, into extra tokens.
        mixer: core mixer name or dict (`{"name": "attention"}`, `{"name": "mamba", "d_state": 16}`).

    `forward(x[B, L, N], x_mark[B, L, F] | None) -> [B, pred_len, N]`.
    """

    def __init__(
        self,
        seq_len: int,
        pred_len: int,
        d_model: int = 512,
        n_heads: int = 8,
        e_layers: int = 2,
        d_ff: int = 2048,
        dropout: float = 0.1,
        activation: str = "gelu",
        use_norm: bool = True,
        use_marks: bool = True,
        mixer: Any = "attention",
    ):
        super().__init__()
        self.seq_len, self.pred_len, self.use_norm, self.use_marks = seq_len, pred_len, use_norm, use_marks
        self.embed = nn.Linear(seq_len, d_model)
        self.embed_dropout = nn.Dropout(dropout)
        self.encoder = Encoder(d_model, e_layers, mixer, n_heads=n_heads, d_ff=d_ff, dropout=dropout,
                               activation=activation)
        self.projector = nn.Linear(d_model, pred_len)

    def tokens(self, x: torch.Tensor, x_mark: torch.Tensor | None = None) -> torch.Tensor:
        """The encoder's input: `[B, N (+F), d_model]` variate (and time-feature) tokens of a normalised window."""
        series = x.transpose(1, 2)
        if self.use_marks and x_mark is not None and x_mark.shape[-1] > 0:
            series = torch.cat([series, x_mark.transpose(1, 2).to(series.dtype)], dim=1)
        return self.embed_dropout(self.embed(series))

    def forward(self, x: torch.Tensor, x_mark: torch.Tensor | None = None) -> torch.Tensor:
        n = x.shape[-1]
        if self.use_norm:
            x, mean, std = normalize(x)
        tokens = self.encoder(self.tokens(x, x_mark))
        y = self.projector(tokens).transpose(1, 2)[:, :, :n]
        return denormalize(y, mean, std) if self.use_norm else y

    def attention_maps(self, x: torch.Tensor, x_mark: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Variate-to-variate attention weights of each layer, `[B, heads, N (+F), N (+F)]` (attention mixer only).

        Row `i` is how much token `i` (variate `i`, then the time-feature tokens) attends to each token.
        """
        was_training = self.training
        self.eval()
        try:
            return encoder_attention(self, self.encoder.layers, x, x_mark)
        finally:
            self.train(was_training)
