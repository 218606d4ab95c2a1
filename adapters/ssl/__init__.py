"""Self-supervised-model units: k-means over HuBERT/WavLM layers (``units``: the tokenizers and
their presets), the models' features (``features``), the k-means fitter (``kmeans``, ``fitting``),
the GSLM centroid converter (``gslm``) and the kNN-VC vocoder (``knn_vc``)."""
