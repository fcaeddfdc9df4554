"""Persistence: settings, the database (jobs, metrics) and the artifact store."""
