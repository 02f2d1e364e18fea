"""Helpers shared by the tests: services (Redis, PostgreSQL), oktasim processes, keys, Celery
clusters, recordings. Conftests and test modules import from here, never from each other."""
