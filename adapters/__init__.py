"""Built-in tokenizers (importable as ``tokbench.adapters``): one module per family.

Presets are declared beside the adapter that serves them, as a ``presets`` class attribute
(see :mod:`tokbench.adapters.mimi`); the registry finds them in every public module of this
package, so a new family is one new module here and nothing else to edit
(docs/adding-a-tokenizer.md). Entries registered below map a preset name to its adapter class
("module:Class", imported only when used) and the option values the preset stands for.
Third-party adapters register through the ``tokbench.adapters`` entry-point group or
``--adapter path/to/file.py:Class``.
"""

from tokbench.registry import commands, register, tokenizers

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
