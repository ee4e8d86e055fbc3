"""Train and evaluate the VirNucPro MLP on merged DNABERT-S + protein-LM embeddings."""

__version__ = "0.1.0"
