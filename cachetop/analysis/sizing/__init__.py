"""Sizing: hit-ratio curves against memory from a spatially sampled key stream (SHARDS), simulated
with libCacheSim and with Redis's own sampled eviction; see docs/sizing.md."""
