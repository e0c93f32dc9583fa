"""Actions that change a cache (evict, warm): always dry-runnable, throttled, audited, and
refused in read-only mode. Nothing here imports Textual; the TUI runs these in a worker thread."""
