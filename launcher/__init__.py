"""Process wiring outside the domain: the ``stylequeue`` command and the embedded local stack."""
