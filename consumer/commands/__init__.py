"""CLI sub-commands that run engines or consumers (``stylequeue gatys|blend|train-blend|consumer``)."""
