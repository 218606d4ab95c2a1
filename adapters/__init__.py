"""Built-in tokenizer presets (importable as ``tokbench.adapters``).

Each entry maps a preset name to its adapter class ("module:Class", imported only when used)
and the option values the preset stands for. Third-party adapters register through the
``tokbench.adapters`` entry-point group or ``--adapter path/to/file.py:Class``.
"""

from tokbench.registry import register, tokenizers

register(tokenizers, "identity", "tokbench.adapters.pcm:IdentityTokenizer",
         "16-bit PCM at 16 kHz: the ground-truth row")
register(tokenizers, "mulaw", "tokbench.adapters.pcm:MuLawTokenizer",
         "8-bit mu-law at 16 kHz (G.711-style companding): 256 codes, 128 kbps", bits=8)
