# jobs: a producer and two consumers around a JoinableQueue. The
# consumers mark each item done; the main greenlet waits in join() until
# every item put has been marked, then stops them. (examples/jobs.c in C.)
import gevent
from gevent.queue import JoinableQueue

q = JoinableQueue()


def consumer(name):
    while True:
        item = q.get()
        print(f"{name} got {item}")
        gevent.sleep(0)  # the work: let the others run
        q.task_done()


def producer():
    for i in range(1, 7):
        q.put(i)
        print(f"put {i}")
    print("producer done")


consumers = [gevent.spawn(consumer, "ann"), gevent.spawn(consumer, "bob")]
gevent.spawn(producer).join()
q.join()
print("every item done")
gevent.killall(consumers)
print("consumers stopped")
