"""Instructions rendered into prompts: the bounded template sandbox, rendering a version on an instance, the glue
from stored rows, and counting tokens."""
