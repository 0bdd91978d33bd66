"""procman with per-line timestamps: the `procman` adapter with
`logging.format: plain`, so every 100-byte line is written as
`<27-byte timestamp> stdout <line>` (35 bytes more). `log_bytes` reports the
child's payload bytes, counted from whole lines, so the harness compares it
with what the child wrote."""
import json
import os

from .procman import Adapter as Raw

PREFIX = 27 + 1 + len("stdout") + 1   # "<ts> stdout "
LINE = 100                             # the flood child's line length, newline included


class Adapter(Raw):
    name = "procman_ts"
    log_format = "plain"   # for benches/logs_scale.py: how to read the file back
    notes = Raw.notes.replace("logging.format=raw", "logging.format=plain (timestamp + stream per line)")

    def write_config(self, services):
        super().write_config(services)
        path = self.path("procman.yaml")
        with open(path) as f:
            cfg = json.load(f)
        for p in cfg["managed_processes"]:
            p["management"]["logging"]["format"] = "plain"
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)
        self._separator = None

    def log_bytes(self, svc):
        try:
            size = os.path.getsize(svc.log)
        except OSError:
            return 0
        if self._separator is None:
            with open(svc.log, "rb") as f:
                first = f.readline()
            if not first.endswith(b"\n") or b"----- run" not in first:
                return 0
            self._separator = len(first)
        body = size - self._separator
        whole, rest = divmod(body, PREFIX + LINE)
        # One line may be shorter: the flood's first, which starts mid-line
        # (the child writes the tail of a buffer of 100-byte lines).
        records = whole + (1 if rest else 0)
        return body - records * PREFIX
