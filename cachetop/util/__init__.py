"""Small utilities with no cachetop dependencies of their own: asyncio helpers, formatting, escaping,
redaction, durations, file modes, terminal detection."""
