"""The ``vibra`` logger on stderr: text or JSON lines, one per run event. A logged error's traceback (an
environment failure that stopped an ingest, say) is shown only with ``-v`` / ``--verbose``: without it the
error stays the one line that says why and what to do."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from vibra_cli.output.json import json_default


class _JsonLines(logging.Formatter):
    """One JSON object per record, with the record's extra fields (and ``traceback`` when verbose)."""

    SKIP = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
               "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        out.update({k: v for k, v in vars(record).items() if k not in self.SKIP})
        if self.verbose and record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, default=json_default)


class _Text(logging.Formatter):
    """``time LEVEL logger: message``; the traceback below it only when verbose."""

    def __init__(self, verbose: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        if self.verbose:
            return super().format(record)
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def setup_logging(fmt: str, level: str, verbose: bool = False) -> None:
    if fmt not in ("text", "json"):
        raise ValueError(f"--log-format {fmt!r}: use text or json")
    levels = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
    if level not in levels:
        raise ValueError(f"--log-level {level!r}: use {', '.join(levels)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonLines(verbose) if fmt == "json" else _Text(verbose))
    log = logging.getLogger("vibra")
    log.handlers[:] = [handler]
    log.setLevel(levels[level])
    log.propagate = False
