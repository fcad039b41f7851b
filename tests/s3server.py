"""An S3-compatible server for the tests and benches: moto's S3 app on 127.0.0.1, in a process of its own.

    python -m tests.s3server 9000 [bucket ...]     # prints "ready" once it listens

moto keeps the objects in memory and speaks the S3 API the studio's client uses (conditional puts, multipart
uploads, listing, deletes). It is served with HTTP/1.1 keep-alive and no request log, and with S3 only: moto's
own launcher looks up the service of every request among all of AWS's, which cost a third of each request."""

from __future__ import annotations

import logging
import sys

from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
from moto.s3.models import s3_backends
from werkzeug.serving import make_server


class _Handler(MotoRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request(self, *args) -> None:
        pass


def main(port: int, buckets: list[str]) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for name in buckets:
        backend.create_bucket(name, "us-east-1")
    server = make_server("127.0.0.1", port, create_backend_app("s3"), threaded=True, request_handler=_Handler)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
