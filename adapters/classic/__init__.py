"""Classic (weight-free, standardised) speech codecs as tokenizers: Opus, Codec2 and AMR-NB.

Kind ``classic``: they need no weights, so they give real rows on any machine, drawn as their own
curves in the quality-against-bitrate chart. See :mod:`tokbench.adapters.classic.packets` for how
packets become ``[B, Q, F]`` codes.
"""

from tokbench.adapters.classic.amr import AmrNbTokenizer
from tokbench.adapters.classic.codec2 import Codec2Tokenizer
from tokbench.adapters.classic.opus import OpusTokenizer

__all__ = ["AmrNbTokenizer", "Codec2Tokenizer", "OpusTokenizer"]
