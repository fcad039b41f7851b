"""The worker: claims jobs from the database and runs them: imports, lints, exports, previews, scores and the
two-stage fine-tune (one handler per `JobKind`, `worker/__main__.py`), each reading and writing through the services.

It is the only part of the studio that may import torch or transformers, and only lazily, inside the
handlers that need them."""
