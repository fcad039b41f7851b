"""The routes: pages (HTML and htmx fragments) and the JSON API under /api/v1 (`api*`), each declaring one access
rule (app/web/deps.py) and leaving the database to the services."""
