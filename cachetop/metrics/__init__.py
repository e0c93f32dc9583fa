"""Pure metric code: counters in, windowed rates, ratios and percentiles out. No sockets, no clocks."""
