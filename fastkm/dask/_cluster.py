"""Where a fit's block tasks run: a distributed client's workers, or this process.

``Workers`` submits to the client's scheduler; a block's state is made on a
worker and every later task on that state is pinned to that worker, so the
state is changed in place where it lives and never copied (a lost worker is
noticed while the fit waits). ``InProcess``
runs the same calls at once, for dask arrays fitted without a client.
Both reduce with ``tree``: a few parts a task, in block order, and say how
much memory a fit may keep on them (``memory``).
"""

import os

# Parts a reduction task adds up (in order).
FAN_IN = 8

# Seconds between the checks, while a fit waits on its tasks, that the
# workers holding its blocks' states are still in the cluster.
ALIVE_EVERY = 0.5


def fold(func, args, first, *rest):
    """``func`` over the parts, left to right: ``func(func(first, a), b)``..."""
    for part in rest:
        first = func(first, part, *args)
    return first


def _lost(workers):
    """The ``LostBlockState`` for states on ``workers``, which left the cluster."""
    from ._states import LostBlockState

    return LostBlockState(
        f"A block's state was on {sorted(workers)[0]}, which left the cluster: the worker holding it "
        "was lost during the fit."
    )


def _workers_of(client):
    """The scheduler's workers now (their info by address), asked of the scheduler itself.

    ``Client.scheduler_info()`` returns the client's cached identity, which
    its own periodic refresh (every few seconds, asking for no worker's
    info) can overwrite between the fresh fetch and the return: a cluster
    of two workers then read as none. The scheduler's ``identity`` lists
    every worker when asked with no argument, in every version.
    """
    return client.sync(client.scheduler.identity)["workers"]


def client_or_none():
    """The distributed client a fit runs on, or None (no distributed, or none started)."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


class Workers:
    """Tasks on a distributed client's workers."""

    def __init__(self, client):
        self.client = client

    def blocks(self, delayed_blocks):
        """The blocks (delayed, persisted) as futures; None stays None."""
        blocks = list(delayed_blocks)
        if all(block is None for block in blocks):
            return blocks
        return self.client.compute(blocks)

    def submit(self, func, *args):
        """``func(*args)`` as a future."""
        return self.client.submit(func, *args, pure=False)

    def spread(self, func, blocks, *args, each=None):
        """``func(block, *own, *args)`` for every block, the blocks shared out between the workers.

        ``blocks``: futures, or plain values (then no worker holds them).
        Each worker takes a share in proportion to its threads: a block stays
        on a worker holding it while that worker is under its share, and goes
        to the least loaded one otherwise (its rows move once, not every
        iteration).
        """
        holders = self.client.who_has([block for block in blocks if hasattr(block, "key")])
        threads = {w: info["nthreads"] for w, info in _workers_of(self.client).items()}
        if not threads:
            raise RuntimeError(f"The Dask client {self.client} has no workers: the fit has nowhere to run.")
        total = sum(threads.values())
        share = {w: len(blocks) * n / total for w, n in threads.items()}
        load = dict.fromkeys(threads, 0)
        each = [()] * len(blocks) if each is None else each
        futures = []
        for block, own in zip(blocks, each, strict=True):
            mine = [
                w
                for w in sorted(holders.get(getattr(block, "key", None), ()))
                if w in load and load[w] + 1 <= share[w] + 1e-9
            ]
            worker = mine[0] if mine else min(sorted(load), key=lambda w: load[w] / threads[w])
            load[worker] += 1
            futures.append(
                self.client.submit(
                    func, block, *own, *args, pure=False, workers=[worker], allow_other_workers=True
                )
            )
        return futures

    def pinned(self, func, states, *args, each=None):
        """``func(state, *own, *args)`` for every state, on the worker holding it and there alone.

        ``each``: per state, the arguments of its own. Other workers are not
        allowed: with them allowed, the scheduler's work stealing moved a
        step to an idle worker (copying the state there) when the first steps
        ran long, a worker loading its kernels. A task pinned to a worker that
        is lost would wait for it forever: ``gather`` and ``wait`` notice the
        loss and raise ``LostBlockState``. A state no worker holds (lost
        before this call) runs where the scheduler puts it, and raises there.
        """
        holders = self._holders(states)
        each = [()] * len(states) if each is None else each
        futures = []
        for state, own in zip(states, each, strict=True):
            workers = sorted(holders.get(state.key, ()))
            futures.append(
                self.client.submit(
                    func,
                    state,
                    *own,
                    *args,
                    pure=False,
                    workers=workers or None,
                    allow_other_workers=not workers,
                )
            )
        return futures

    def _holders(self, states):
        # Asked once per set of states: a state found elsewhere later (its
        # worker lost) runs where the scheduler puts it, and says so.
        key = tuple(state.key for state in states)
        if getattr(self, "_holders_of", (None,))[0] != key:
            self._holders_of = (key, self.client.who_has(states))
        return self._holders_of[1]

    def _until_done(self, futures):
        """Wait for ``futures``, checking every ``ALIVE_EVERY`` s that the states' workers are alive."""
        from distributed import wait

        pending = futures if isinstance(futures, list | tuple) else [futures]
        while True:
            try:
                wait(pending, timeout=ALIVE_EVERY)
                return
            except TimeoutError:
                lost = self._lost_workers()
                if lost:
                    raise _lost(lost) from None

    def _lost_workers(self):
        """The workers holding a state (as ``pinned`` found them) no longer in the cluster."""
        holders = getattr(self, "_holders_of", (None, {}))[1]
        needed = {worker for workers in holders.values() for worker in workers}
        return needed - set(_workers_of(self.client))

    def memory(self):
        """The workers' memory limits added up, in bytes (None: a worker has none)."""
        limits = [info.get("memory_limit") for info in _workers_of(self.client).values()]
        return sum(limits) if limits and all(limits) else None

    def wait(self, futures):
        self._until_done(futures)

    def gather(self, futures):
        """The results of ``futures``, raising ``LostBlockState`` where a state's worker is lost.

        Checked while waiting (``_until_done``), and while fetching: a result
        lost with its worker after it was computed is computed again, which
        can need a task pinned to that worker. A watcher then cancels the
        fetch (a fetch given up on a timeout instead leaves distributed's
        own waiting tasks behind, which fail noisily when the client closes).
        """
        import threading

        self._until_done(futures)
        stop, lost = threading.Event(), []

        def watch():
            while not stop.wait(ALIVE_EVERY):
                lost.extend(self._lost_workers())
                if lost:
                    self.client.cancel(futures)
                    return

        watcher = threading.Thread(target=watch, name="fastkm-gather-watch", daemon=True)
        watcher.start()
        try:
            return self.client.gather(futures)
        except Exception:
            if lost:
                raise _lost(lost) from None
            raise
        finally:
            stop.set()
            watcher.join()

    def tree(self, func, parts, *args):
        # Up to FAN_IN parts a task, folded left to right: fewer rounds of
        # tiny tasks than pairs, the same block order.
        while len(parts) > 1:
            parts = [
                self.client.submit(fold, func, args, *parts[i : i + FAN_IN], pure=False)
                for i in range(0, len(parts), FAN_IN)
            ]
        return parts[0]


class InProcess:
    """The same calls, run at once in this process."""

    def blocks(self, delayed_blocks):
        import dask

        return list(dask.compute(*delayed_blocks))  # None stays None

    def submit(self, func, *args):
        return func(*args)

    def spread(self, func, blocks, *args, each=None):
        each = [()] * len(blocks) if each is None else each
        return [func(block, *own, *args) for block, own in zip(blocks, each, strict=True)]

    def pinned(self, func, states, *args, each=None):
        each = [()] * len(states) if each is None else each
        return [func(state, *own, *args) for state, own in zip(states, each, strict=True)]

    def memory(self):
        """This machine's memory, in bytes."""
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")

    def wait(self, futures):
        pass

    def gather(self, futures):
        return futures

    def tree(self, func, parts, *args):
        while len(parts) > 1:
            parts = [fold(func, args, *parts[i : i + FAN_IN]) for i in range(0, len(parts), FAN_IN)]
        return parts[0]


def executor():
    """``Workers`` on the current client, else ``InProcess``."""
    client = client_or_none()
    return InProcess() if client is None else Workers(client)
