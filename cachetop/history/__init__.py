"""History: per instance and per time bucket, the top keys, top prefixes and headline metrics, in SQLite."""
