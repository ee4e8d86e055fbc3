"""Data: finding merged files, reading and checking them, the split, the feature table, batches."""
