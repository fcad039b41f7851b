"""Getting datasets in: streaming readers, field validation, image checks, and the chunked importer."""
