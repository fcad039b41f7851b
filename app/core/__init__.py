"""The studio's infrastructure: settings, the database engine and migrations, the failures a user can act on,
free-text limits, logs, forked helpers, media and object storage, thumbnails, passwords and CSRF, and the access
rules."""
