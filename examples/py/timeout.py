# timeout: gevent.Timeout as a scope. A slow step is cut short by the
# scope's deadline without killing the greenlet, which carries on; nested
# scopes: the inner one expiring leaves the outer one running.
# (examples/timeout.c in C.)
import gevent
from gevent import Timeout


def step(name, ms):
    print(f"{name}: starts ({ms} ms)")
    gevent.sleep(ms / 1000)
    print(f"{name}: done")


t = Timeout(0.1)
t.start()
expired = False
try:
    step("slow step", 1000)
except Timeout as e:
    if e is not t:
        raise
    print("slow step: cut short (timeout)")
    expired = True
finally:
    t.cancel()
print(f"scope expired: {'yes' if expired else 'no'}")

outer = Timeout(0.5)
outer.start()
outer_expired = False
try:
    inner = Timeout(0.05)
    inner.start()
    inner_expired = False
    try:
        step("inner step", 200)
    except Timeout as e:
        if e is not inner:
            raise
        print("inner step: cut short (timeout)")
        inner_expired = True
    finally:
        inner.cancel()
    print(f"inner expired: {'yes' if inner_expired else 'no'}")
    step("outer step", 100)
except Timeout as e:
    if e is not outer:
        raise
    outer_expired = True
finally:
    outer.cancel()
print(f"outer expired: {'yes' if outer_expired else 'no'}")

step("after the scopes", 10)
