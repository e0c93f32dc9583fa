"""Sources of Snapshots besides the live Monitor: a daemon attached over HTTP, Prometheus."""
