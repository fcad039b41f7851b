"""Synthesis: new stage-2 conversations written by a model about a task's instances.

    prompts     the reviewed instructions a generator follows, one line of versions per conversation kind
    requests    what is asked: a chat-completions body from a prompt and a subject (image, dataset text)
    replies     what comes back, turned into a conversation or refused with its reason
    endpoints   the OpenAI-compatible endpoints an admin configured, and the concurrent, retrying client
    batches     the same requests as OpenAI Batch JSONL, and the output file joined back on custom_id
    store       generated conversations into their pool, each with its origin, unreviewed

The worker runs it (`worker/synthesize.py`): with a registered model, batched like previews, or an endpoint."""
