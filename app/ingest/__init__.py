"""Getting datasets in: streaming readers, field validation, image checks, and the chunked importer."""

# What can be imported, for the browser's menu and the worker's `import` job alike.
IMPORT_FORMATS = {
    "unified": "Vision-Flan unified instances (JSON/JSONL)",
    "llava": "Released Vision-Flan / LLaVA training records",
    "table": "Any table (JSONL, CSV, Parquet, save_to_disk folder) with a field mapping",
    "conversations": "Stage-2 conversations (LLaVA-Instruct style) into a pool",
    "metadata": "Source datasets and task metadata (YAML/JSON)",
}
