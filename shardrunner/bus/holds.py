"""How many consumer groups hold each seq of one connection's session (the router's low water).

A worker that dies loses what it held; the supervisor resumes each session from just before the
oldest seq still held, so these counts must be exact and cheap: an array append per event, a
decrement per release, a search at C speed every 0.5 s.
"""

from __future__ import annotations

from array import array


class Holds:
    """For one connection's session: how many groups hold each seq, to find the oldest still held.

    Kept as events come and go (an array append per event, a decrement per release), and searched
    at C speed when asked (every 0.5 s), so that :meth:`Router.low_water` costs nothing like a
    scan of everything held: with a bot down, a worker may hold hundreds of thousands of events.
    """

    __slots__ = ("base", "counts", "low")

    def __init__(self, seq: int) -> None:
        self.base = seq  # the seq of counts[0]
        self.counts: array[int] = array("I")
        self.low = 0  # no seq below base + low is held

    def add(self, seq: int, holders: int) -> None:
        i = seq - self.base
        counts = self.counts
        if i == len(counts):
            counts.append(holders)
            return
        if i < 0:  # older than anything seen (not expected: connections publish in seq order)
            counts[0:0] = array("I", bytes(4 * -i))
            self.base, self.low, i = seq, 0, 0
        elif i > len(counts):  # seqs in between are held by nobody (unsubscribed or filtered)
            gap = i - len(counts)
            if gap == 1:  # the usual gap (every other event filtered): no new array for it
                counts.append(0)
            else:
                counts.frombytes(bytes(4 * gap))
            counts.append(holders)
            return
        counts[i] += holders

    def oldest(self) -> int | None:
        counts = self.counts
        raw = memoryview(counts)[self.low :].tobytes()
        # The first non-zero byte lies in the first non-zero count (4 bytes per count).
        i = self.low + (len(raw) - len(raw.lstrip(b"\0"))) // 4
        if i > 4096 and i * 2 > len(counts):  # forget what was released long ago
            del counts[:i]
            self.base += i
            i = 0
        self.low = i
        return self.base + i if i < len(counts) else None
