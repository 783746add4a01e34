"""A byte relay between a host TCP port and the same port inside a network namespace, over a Unix socket.

The intake inside the test's namespace still needs the host's RabbitMQ and
MongoDB-wire server. A path-named Unix socket is reachable from every
namespace (it lives in the file system), so one relay on the host listens on
it and connects to ``127.0.0.1:<port>``, and one inside the namespace
listens on its own ``127.0.0.1:<port>`` and connects to the socket. Nothing
leaves the machine; only loopbacks and a file are involved.

    python relay.py host SOCKET PORT      (on the host)
    python relay.py netns SOCKET PORT     (under ip netns exec)
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading


def pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


def serve(listener: socket.socket, connect: object) -> None:
    while True:
        client, _ = listener.accept()
        try:
            upstream = connect()  # type: ignore[operator]
        except OSError:
            client.close()
            continue
        threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()


def main() -> None:
    side, path, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if side == "host":
        if os.path.exists(path):
            os.unlink(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(64)
        print("ready", flush=True)
        serve(listener, lambda: socket.create_connection(("127.0.0.1", port)))
    else:
        listener = socket.create_server(("127.0.0.1", port), backlog=64)

        def to_socket() -> socket.socket:
            unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            unix.connect(path)
            return unix

        print("ready", flush=True)
        serve(listener, to_socket)


if __name__ == "__main__":
    main()
