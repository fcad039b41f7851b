"""A TCP proxy that a test can cut, to see what a client does when its server goes away in the middle of work."""

from __future__ import annotations

import contextlib
import socket
import threading


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<target>. Once `cut_after` bytes have gone from clients to the
    server, it drops every connection and refuses new ones (accepted, then closed) until `restore()`."""

    def __init__(self, target: int, *, cut_after: int | None = None):
        self.target, self.cut_after, self.forwarded, self.cut = target, cut_after, 0, False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restore(self) -> None:
        with self._lock:
            self.cut, self.cut_after = False, None

    def close(self) -> None:
        self._listener.close()
        self._drop_all()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.cut:
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._open.update((client, server))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if upstream:
                    with self._lock:
                        self.forwarded += len(data)
                        if self.cut_after is not None and self.forwarded >= self.cut_after:
                            self.cut = True
                    if self.cut:
                        break
                sink.sendall(data)
        if self.cut:
            self._drop_all()
        else:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def _drop_all(self) -> None:
        with self._lock:
            ends, self._open = list(self._open), set()
        for end in ends:
            with contextlib.suppress(OSError):
                end.close()
