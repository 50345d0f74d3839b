"""Training our own blend decoder (``stylequeue train-blend``) and fetching its data."""
