# eat_play: two greenlets take turns while they sleep; joinall waits for
# both and .value is what each returned. (examples/eat_play.c in C.)
from gevent import monkey

monkey.patch_all()

import time  # noqa: E402

import gevent  # noqa: E402


def eat(name):
    print(f"{name} eats: bite 1")
    time.sleep(0.2)  # patched: the other greenlet runs meanwhile
    print(f"{name} eats: bite 2")
    return "full"


def play(name):
    print(f"{name} plays: round 1")
    time.sleep(0.3)
    print(f"{name} plays: round 2")
    return "tired"


g1 = gevent.spawn(eat, "egon")
g2 = gevent.spawn(play, "egon")
print("both spawned, none ran yet")
gevent.joinall([g1, g2])
print(f"eat returned {g1.value}, play returned {g2.value}")
