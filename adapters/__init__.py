"""Built-in tokenizer presets (importable as ``tokbench.adapters``).

Each entry maps a preset name to its adapter class ("module:Class", imported only when used)
and the option values the preset stands for. Third-party adapters register through the
``tokbench.adapters`` entry-point group or ``--adapter path/to/file.py:Class``.
"""

from tokbench.registry import commands, register, tokenizers

register(tokenizers, "identity", "tokbench.adapters.pcm:IdentityTokenizer",
         "16-bit PCM at 16 kHz: the ground-truth row")
register(tokenizers, "mulaw", "tokbench.adapters.pcm:MuLawTokenizer",
         "8-bit mu-law at 16 kHz (G.711-style companding): 256 codes, 128 kbps", bits=8)

# Neural codecs through transformers (pinned Hub revisions; --checkpoint DIR for a local copy).
register(tokenizers, "mimi", "tokbench.adapters.mimi:MimiTokenizer",
         "Kyutai Mimi (Moshi), first 8 of 32 codebooks as Moshi uses it: 1.1 kbps", num_quantizers=8)
register(tokenizers, "mimi-32", "tokbench.adapters.mimi:MimiTokenizer",
         "Kyutai Mimi, all 32 codebooks: 4.4 kbps", num_quantizers=32)
register(tokenizers, "encodec-24k", "tokbench.adapters.encodec:Encodec24kTokenizer",
         "Meta EnCodec 24 kHz at 6 kbps (8 codebooks)", bandwidth=6.0)
for _kbps, _label in ((1.5, "1.5"), (3.0, "3"), (6.0, "6"), (12.0, "12"), (24.0, "24")):
    register(tokenizers, f"encodec-24k-{_label}kbps", "tokbench.adapters.encodec:Encodec24kTokenizer",
             f"Meta EnCodec 24 kHz at {_label} kbps ({int(_kbps * 4 / 3)} codebooks)", bandwidth=_kbps)
for _rate, _cls, _full, _fewer in (("16k", "Dac16kTokenizer", 12, (8, 4, 2)),
                                   ("24k", "Dac24kTokenizer", 32, (16, 8, 4, 2)),
                                   ("44k", "Dac44kTokenizer", 9, (8, 4, 2))):
    register(tokenizers, f"dac-{_rate}", f"tokbench.adapters.dac:{_cls}",
             f"Descript DAC {_rate}Hz, all {_full} codebooks", n_quantizers=_full)
    for _n in _fewer:
        register(tokenizers, f"dac-{_rate}-{_n}q", f"tokbench.adapters.dac:{_cls}",
                 f"Descript DAC {_rate}Hz, first {_n} of {_full} codebooks", n_quantizers=_n)

# Semantic tokens: k-means units of a self-supervised model's layer L (the output of transformer
# block L). Centroids: --set centroids=PATH or $TOKBENCH_CACHE/kmeans/<model>-l<L>-km<K>.npz
# (`tokbench fit-kmeans`, or `tokbench convert-gslm` for the published GSLM ones).
_SSL = "tokbench.adapters.ssl.units:SSLKMeansTokenizer"
for _k in (50, 100, 200):
    # GSLM's published centroids were fitted on un-normalised input: the preset says so.
    register(tokenizers, f"hubert-base-l6-km{_k}", _SSL,
             f"HuBERT-base layer 6, k-means K={_k} (GSLM units; tokbench convert-gslm --k {_k})",
             model="hubert-base", layer=6, k=_k, normalize=False)
register(tokenizers, "hubert-base-l9-km500", _SSL,
         "HuBERT-base layer 9, k-means K=500 (centroids from tokbench fit-kmeans)",
         model="hubert-base", layer=9, k=500)
register(tokenizers, "hubert-large-l22-km500", _SSL,
         "HuBERT-large (LL60k) layer 22, k-means K=500 (centroids from tokbench fit-kmeans)",
         model="hubert-large", layer=22, k=500)
register(tokenizers, "wavlm-large-l6-km1000", _SSL,
         "WavLM-large layer 6, k-means K=1000 (centroids from tokbench fit-kmeans)",
         model="wavlm-large", layer=6, k=1000)

# CLI sub-commands of the SSL family (attached by tokbench.cli without importing the family).
register(commands, "fit-kmeans", "tokbench.adapters.ssl.commands:fit_kmeans",
         "fit k-means centroids on HuBERT/WavLM layers for the semantic-token adapters")
register(commands, "convert-gslm", "tokbench.adapters.ssl.commands:convert_gslm",
         "convert GSLM's published HuBERT-base k-means (pickled scikit-learn) to a plain array file")
