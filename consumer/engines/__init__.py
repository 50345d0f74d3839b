"""Style-transfer engines behind one protocol (:mod:`.base`) and a registry keyed by mode (:mod:`.registry`)."""
