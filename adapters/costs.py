"""What a full-size model costs, recorded beside each adapter that has measured it: parameters
of encoder, quantiser and decoder, and multiply-accumulates (MACs) per second of audio for encode
and decode. Torch-free, so that listing tokenizers (``tokbench list tokenizers --details``) can
show it without loading a model.

How the numbers are measured (``benchmarks/tokenizer_costs.py``): the full-size model is built
from the released config with random weights, and PyTorch's own FLOP counter
(``torch.utils.flop_counter.FlopCounterMode``) runs encode and decode on one second of audio at
the model's sample rate; MACs = FLOPs / 2. The counter gives 0 for ``nn.LSTM``, so the LSTM MACs
are added analytically (``4 * H * (I + H)`` per step, layer and direction) and ``lstm_macs`` says
how many were added. Parameter counts are exact (``numel`` of each part).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedParams:
    """A parameter count the authors (or a paper) publish, with where it is published."""

    params: int
    source: str


@dataclass(frozen=True)
class ModelCost:
    """The cost of one preset's full-size model (one second of audio in; see the module doc)."""

    params_encoder: int
    params_quantizer: int
    params_decoder: int
    #: MACs to encode one second of audio (encoder + quantiser), LSTM MACs included
    encode_macs_per_s: int
    #: MACs to decode one second of codes (quantiser lookup + decoder), LSTM MACs included
    decode_macs_per_s: int
    #: of the MACs above, how many were added analytically for LSTMs (encode, decode)
    lstm_macs: tuple[int, int] = (0, 0)
    #: how and with what it was measured (torch release, script)
    measured: str = ""
    #: parameters the model holds but neither encode nor decode uses (a training-only head)
    params_unused: int = 0

    @property
    def params(self) -> int:
        """All parameters of the released model (what authors publish)."""
        return self.params_encoder + self.params_quantizer + self.params_decoder + self.params_unused
