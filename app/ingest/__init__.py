"""Getting datasets in: streaming readers, field validation, image checks, and the chunked importer."""

# What can be imported, for the browser's menu and the worker's `import` job alike.
IMPORT_FORMATS = {
    "unified": "Vision-Flan unified instances (JSON/JSONL)",
    "llava": "Released Vision-Flan / LLaVA training records",
    "table": "Any table (JSONL, CSV, Parquet, save_to_disk folder) with a field mapping",
    "conversations": "Stage-2 conversations (LLaVA-Instruct style) into a pool",
    "metadata": "Source datasets and task metadata (YAML/JSON)",
    "instructions": "Instructions for existing tasks (YAML/JSON), as drafts or submitted for review",
    "corrections": "Fixes of instances (CSV/JSONL), proposed for a second person to accept",
}

# Instances per transaction: what a killed import can lose, and what each commit amortises (SQLite commits
# cost ~10% of an import at 5,000; at 20,000 a chunk is still a fraction of a second of work).
CHUNK_SIZE = 20_000
