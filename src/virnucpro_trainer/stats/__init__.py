"""Statistics on plain arrays: metrics, genome-resampled intervals, paired tests, calibration,
cutoffs. No plotting and no markdown here."""
