"""stylequeue: the domain package shared by the API, the consumers and the CLI.

Job model, configuration, parameters, storage, bus and status store live here; nothing in
this package creates a client at import time or imports torch.
"""

__version__ = "0.1.0"
