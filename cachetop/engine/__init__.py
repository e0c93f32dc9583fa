"""The engine: config, targets, the Monitor and its Pollers, discovery (cluster, sentinel), and the
composition root (live). It never imports the TUI or the commands."""
