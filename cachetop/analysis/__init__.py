"""Estimators over samples of a cache's keyspace, each stated with its error."""
