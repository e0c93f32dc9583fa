"""A logging filter that rewrites what a record will print: its message, its traceback and its
stack. The secret scrubber (redact.py) and the control-character escaper (safe_text.py) are two
rewrites of the same record, so they share this one mechanism."""

from __future__ import annotations

import logging


class RewritingFilter(logging.Filter):
    """Subclasses say how to rewrite the message and the multi-line texts (traceback, stack)."""

    _formatter = logging.Formatter()

    def rewrite(self, text: str) -> str:
        return text

    def rewrite_lines(self, text: str) -> str:
        return self.rewrite(text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.rewrite(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set, so the rewritten text is what they print.
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.rewrite_lines(record.exc_text)
        if record.stack_info:
            record.stack_info = self.rewrite_lines(record.stack_info)
        return True
