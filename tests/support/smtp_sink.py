#!/usr/bin/env python3
"""A real SMTP server for the integration tests: listens on 127.0.0.1:PORT and writes each
message it receives to FOLDER, one file per message, so a test can read what was delivered.

    python3 tests/support/smtp_sink.py PORT FOLDER

Each file holds one `X-Envelope-To:` line per SMTP recipient (RCPT TO), then the message
exactly as received. Files appear whole: they are written under a hidden name and renamed.
Runs until killed. Needs aiosmtpd (Debian: python3-aiosmtpd; PyPI: aiosmtpd).
"""

import itertools
import pathlib
import sys
import threading
import time

from aiosmtpd.controller import Controller


class FolderHandler:
    def __init__(self, folder: pathlib.Path):
        self.folder = folder
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time_ns()}-{next(self.counter)}.eml"
        header = "".join(f"X-Envelope-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos)
        partial = self.folder / f".{name}.partial"
        partial.write_bytes(header.encode() + envelope.original_content)
        partial.rename(self.folder / name)
        return "250 OK"


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    port = int(sys.argv[1])
    folder = pathlib.Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)

    controller = Controller(
        FolderHandler(folder), hostname="127.0.0.1", port=port, enable_SMTPUTF8=True
    )
    controller.start()
    print(f"smtp sink listening on 127.0.0.1:{port}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
