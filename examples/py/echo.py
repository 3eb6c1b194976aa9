# echo: a server greenlet per connection echoes lines back; a client in
# the same program sends three and reads each answer. Every print follows
# from the one before it (a message must arrive before it is echoed), so
# the order is fixed. (examples/echo.c in C.)
from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402

import gevent  # noqa: E402


def serve_one(conn):
    while True:
        data = conn.recv(1024)
        if not data:
            print("server: the client left")
            break
        print(f"server: echoing {data.decode().strip()!r}")
        conn.sendall(data)
    conn.close()


def server(listener):
    conn, _ = listener.accept()
    serve_one(conn)


def client(port):
    conn = socket.create_connection(("127.0.0.1", port))
    for line in ["hello", "gevent", "in C"]:
        conn.sendall((line + "\n").encode())
        print(f"client: sent {line!r}")
        reply = conn.recv(1024)
        print(f"client: got back {reply.decode().strip()!r}")
    conn.close()
    print("client: done")


listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
srv = gevent.spawn(server, listener)
cli = gevent.spawn(client, listener.getsockname()[1])
gevent.joinall([cli, srv])
listener.close()
print("both finished")
