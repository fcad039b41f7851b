"""The demo workspace (`make run`, `python -m app demo`): files written in the formats the import reads, taken in
by the real import, then worked by the real services, as a team would.

`source_files` draws the pictures and writes the files; `workspace` imports them and takes one task through
review, a blind solve test and a spot check; `model_half` adds a ready version and the tiny model."""
