"""The admin side: REST API (/api/v1), self-service and web UI, served on the admin listener."""
