# chat: a chat server (a greenlet per member, every line relayed to the
# others) and three scripted members who join one after another and speak
# in turn, each once the line before has reached them. The server reports
# as it relays; each member's transcript is printed at the end.
# (examples/chat.c in C.)
from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402

members = []  # (name, conn) in join order


def relay(sender, line):
    for name, conn in members:
        if name != sender:
            conn.sendall(line.encode())


def member_session(conn):
    f = conn.makefile("r")
    name = f.readline().strip()
    print(f"server: {name} joined")
    conn.sendall(f"welcome {name}\n".encode())
    relay(name, f"* {name} joined\n")
    members.append((name, conn))
    for line in f:
        print(f"server: {name} says {line.strip()!r}")
        relay(name, f"{name}: {line}")
    members.remove((name, conn))
    conn.close()


def serve(listener):
    while True:
        conn, _ = listener.accept()
        gevent.spawn(member_session, conn)


LAST = "carol: hey both"


def member(port, name, cue, says, welcomed):
    conn = socket.create_connection(("127.0.0.1", port))
    f = conn.makefile("r")
    conn.sendall(f"{name}\n".encode())
    seen = []
    while True:
        line = f.readline().strip()
        seen.append(line)
        if line.startswith("welcome"):
            welcomed.set()
        if line == cue:
            conn.sendall(f"{says}\n".encode())
            if f"{name}: {says}" == LAST:
                break
        if line == LAST:
            break
    conn.close()
    return seen


listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)
port = listener.getsockname()[1]
server = gevent.spawn(serve, listener)
script = [("alice", "* carol joined", "hello all"),
          ("bob", "alice: hello all", "hi alice"),
          ("carol", "bob: hi alice", "hey both")]
talkers = []
for name, cue, says in script:
    welcomed = Event()
    talkers.append(gevent.spawn(member, port, name, cue, says, welcomed))
    welcomed.wait()  # the next one joins after this one is in
gevent.joinall(talkers)
for (name, _, _), t in zip(script, talkers):
    print(f"{name} saw: " + " | ".join(t.value))
server.kill()
listener.close()
