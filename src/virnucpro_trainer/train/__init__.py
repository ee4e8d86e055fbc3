"""Training: the pipeline from config to run directory, the loop, early stopping, the epoch log,
the training state, resume, signals and the final scoring of the test side."""
