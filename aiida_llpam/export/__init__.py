"""Export of stored results to files other programs read."""
