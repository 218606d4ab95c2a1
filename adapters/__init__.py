"""Built-in tokenizers (importable as ``tokbench.adapters``): one module per family.

Presets are declared beside the adapter that serves them, as a ``presets`` class attribute
(see :mod:`tokbench.adapters.mimi`); the registry finds them in every public module of this
package and of its sub-packages (``ssl``, ``classic``), so a new family is one new module here and nothing else to edit
(docs/adding-a-tokenizer.md). Entries registered below map a preset name to its adapter class
("module:Class", imported only when used) and the option values the preset stands for.
Third-party adapters register through the ``tokbench.adapters`` entry-point group or
``--adapter path/to/file.py:Class``.
"""

from tokbench.registry import commands, register

# CLI sub-commands of the SSL family (attached by tokbench.cli without importing the family).
register(commands, "fit-kmeans", "tokbench.adapters.ssl.commands:fit_kmeans",
         "fit k-means centroids on HuBERT/WavLM layers for the semantic-token adapters")
register(commands, "convert-gslm", "tokbench.adapters.ssl.commands:convert_gslm",
         "convert GSLM's published HuBERT-base k-means (pickled scikit-learn) to a plain array file")
