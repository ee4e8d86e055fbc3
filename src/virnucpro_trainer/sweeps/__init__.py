"""After a multirun: the summary.csv and summary.md of training and evaluation sweeps."""
