# fetch3: three URLs fetched at once. The program serves them itself (a
# greenlet per connection, each page slower than the last) so it needs no
# network; the fetches are spawned slowest first and finish fastest first.
# (examples/fetch3.c in C.)
from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

import gevent  # noqa: E402

DELAY = {"/slow": 0.3, "/medium": 0.2, "/fast": 0.1}


def handle(conn):
    head = b""
    while b"\r\n\r\n" not in head:
        data = conn.recv(4096)
        if not data:
            break
        head += data
    path = head.split(b" ")[1].decode() if head else "/"
    time.sleep(DELAY.get(path, 0))
    body = f"page {path}\n".encode()
    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
                 + body)
    conn.close()


def serve(listener):
    while True:
        conn, _ = listener.accept()
        gevent.spawn(handle, conn)


def fetch(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as r:
        body = r.read()
    print(f"fetched {path}: {r.status}, {len(body)} bytes")


listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
port = listener.getsockname()[1]
server = gevent.spawn(serve, listener)
gevent.joinall([gevent.spawn(fetch, port, p) for p in ["/slow", "/medium", "/fast"]])
print("all three fetched")
server.kill()
listener.close()
