"""The domain's logic and every query and write: one module per concept (tasks, instructions, reviews, checks,
versions, jobs...), `queues/` for the reviewer queues."""
