"""Dataset versions: what the studio produces. The spec (app/schemas/export_spec.py) says what goes in,
`sampling` draws it, `build` writes and checks it (`contract` holds the trainer's rules, `task_records` renders a
run of tasks, `files` writes ASCII JSON that hashes itself, `card` the dataset card and training commands) and
its manifest (app/schemas/manifest.py)."""
