"""Dataset versions: what the studio produces. `spec` says what goes in, `sampling` draws it, `build` writes
and checks it (`contract` holds the trainer's rules, `files` writes ASCII JSON that hashes itself, `card` the
dataset card and training commands)."""
