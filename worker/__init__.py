"""The worker: claims jobs from the database and runs them (imports now; previews and fine-tunes later).

It is the only part of the studio that may import torch or transformers, and only lazily, inside the
handlers that need them."""
