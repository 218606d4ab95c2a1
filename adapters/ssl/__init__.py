"""Self-supervised-model units: k-means over HuBERT/WavLM layers (``units``), the k-means fitter
(``kmeans``), the GSLM centroid converter (``gslm``) and the kNN-VC vocoder (``knn_vc``)."""
