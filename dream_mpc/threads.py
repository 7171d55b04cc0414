"""Adaptive CPU threads for the acting step: each call runs at the thread count that is fastest right now.

Why: a batch-1 planning step is hundreds of small parallel regions. When another process takes one of the cores,
the OpenMP thread on that core is descheduled and its siblings wait for it at the end of every region: with one of
two cores busy, a 2-thread MPPI step took 2.8x as long and a Dream-MPC step 2.5x, while 1 thread was barely
touched. Which count is fastest depends on the planner, the model, the machine and the other load of the moment,
so it is measured rather than guessed: the chosen count is timed on every call, another count now and then.

How: the candidates are 1, 2, 4, ... up to torch's thread count (the `threads` setting). Every call runs at the
current best, whose time is a running average. Now and then a candidate runs two calls as a try, and its time is
the second (the first warms the caches of the cores it adds). Tries of fewer threads and tries of more have their
own interval: a try that confirms the choice doubles its interval (4, 8, ... up to `max_interval` calls for more
threads, 4x that for fewer, which win on a quiet machine only where they always do: Dream-MPC's small steps), so a
steady machine pays little for looking. A switch to fewer threads starts the interval of tries of more over: the
load that made it may leave soon, and a wrong switch (one unlucky time) then costs at most `first_interval` calls; a
wrong switch to more threads shows in its own time on the next calls. Load that arrives shows in the time of the
current choice at once; load that leaves does not (fewer threads run as fast as before), so on Linux the machine's
idle cores are read from /proc/stat every 0.1 s: a core coming free makes the next call try more threads, and
while no core is idle, more threads are tried only every `max_interval` calls (they would wait for a busy core).

Adapting costs no reproducibility: with MKL's strict mode (`MKL_CBWR`, set by `dream_mpc.reproducible_products()`,
which the programs call) a matrix product gives the same bits at any thread count, and so do the planners
(tests/test_threads.py checks actions bit for bit). Where that does not hold (MKL used before the strict mode was
set, another BLAS), one warning says so.
"""

import collections
import contextlib
import functools
import math
import os
import time
import warnings

import torch


def candidates(most):
    """1, 2, 4, ... below `most`, and `most` itself."""
    out, n = [], 1
    while n < most:
        out.append(n)
        n *= 2
    return out + [most]


class _Choice:
    """The timing state of one kind of call (one batch size) at one maximum thread count."""

    def __init__(self, most, first_interval, max_interval, smoothing, try_calls=2):
        self.candidates = candidates(most)
        self.first_interval, self.max_interval, self.smoothing = first_interval, max_interval, smoothing
        self.try_calls = try_calls
        self.best = most  # torch's default until measured otherwise
        self.log_seconds = {}  # candidate -> log of its time: a running average for the best, else its last try
        self.last_tried = {n: 0 for n in self.candidates}  # call number of each candidate's last run
        self.calls = 0
        # two schedules of tries: of more threads than the best ("up") and of fewer ("down")
        self.interval = {"up": first_interval, "down": first_interval}
        self.countdown = dict(self.interval)
        self.trying, self.try_left = None, 0
        self.warm = False
        self.spare = None  # a core was idle in the last window (None: not known)

    def note_idle(self, idle_cores):
        spare = idle_cores >= 0.5
        if spare and self.spare is False:  # a core came free: try more threads now
            self.countdown["up"] = 0
        self.spare = spare

    def pick(self):
        if self.trying is None and self.warm and self.best in self.log_seconds:
            n = self._next_try()
            if n is not None:
                self.trying, self.try_left = n, self.try_calls
        return self.best if self.trying is None else self.trying

    def _next_try(self):
        untimed = [n for n in self.candidates if n not in self.log_seconds]
        if untimed:  # first, one try of each
            return untimed[0]
        for way in ("up", "down"):
            others = [n for n in self.candidates if (n > self.best) == (way == "up") and n != self.best]
            if not others or self.countdown[way] > 0:
                continue
            n = min(others, key=self.last_tried.get)
            if way == "up" and self.spare is False and self.calls - self.last_tried[n] < self.max_interval:
                continue  # no idle core: more threads would wait for a busy one (look only now and then)
            return n
        return None

    def record(self, n, seconds):
        self.calls += 1
        if not self.warm:  # the first call pays for allocations and first-use setup: not timed
            self.warm = True
            return
        self.last_tried[n] = self.calls
        if n == self.trying:
            self.try_left -= 1
            if self.try_left > 0:  # a try's first call is slower: the cores it adds or moves to have cold caches
                return
            self.trying = None
        x, old, way = math.log(max(seconds, 1e-9)), self.log_seconds.get(n), "up" if n > self.best else "down"
        tried = n != self.best
        self.log_seconds[n] = x if tried or old is None else old + self.smoothing * (x - old)
        best = min(self.log_seconds, key=self.log_seconds.get)
        if best < self.best:  # fewer threads won (load arrived, or one unlucky time): look up again soon
            self.interval["up"] = self.countdown["up"] = self.first_interval
        elif tried and best == self.best:  # the try confirmed the choice: look that way later than last time
            cap = self.max_interval * (4 if way == "down" else 1)  # fewer threads win only where they always do
            self.interval[way] = self.countdown[way] = min(2 * self.interval[way], cap)
        elif not tried:  # the countdowns of the ways there are to look from here
            if self.best < self.candidates[-1]:
                self.countdown["up"] -= 1
            if self.best > self.candidates[0]:
                self.countdown["down"] -= 1
        self.best = best


class IdleCores:
    """Idle cores of this process's CPU set, averaged over windows of at least `window` seconds, from Linux's
    /proc/stat (~30 us a read). Elsewhere `poll` always says None."""

    def __init__(self, window=0.1):
        self.window = window
        try:
            self.cpus = {f"cpu{i}" for i in os.sched_getaffinity(0)}
            self.tick = os.sysconf("SC_CLK_TCK")
            self.last = (time.monotonic(), self._idle_ticks())
        except (AttributeError, OSError, ValueError):
            self.last = None

    def _idle_ticks(self):
        ticks = 0
        with open("/proc/stat") as f:
            for line in f:
                if not line.startswith("cpu"):
                    break
                fields = line.split()
                if fields[0] in self.cpus:
                    ticks += int(fields[4]) + int(fields[5])  # idle + iowait
        return ticks

    def poll(self):
        """Idle cores over the window that just closed, or None while it is open (or off Linux)."""
        if self.last is None or time.monotonic() - self.last[0] < self.window:
            return None
        try:
            now, ticks = time.monotonic(), self._idle_ticks()
        except (OSError, ValueError, IndexError):  # /proc/stat gone or unreadable: carry on without the hint
            self.last = None
            return None
        idle = (ticks - self.last[1]) / self.tick / (now - self.last[0])
        self.last = (now, ticks)
        return idle


@functools.cache
def products_thread_independent(most):
    """Whether a few-row matrix product (the shape whose bits MKL's default mode changes with the thread count)
    gives the same bits at 1 and `most` threads."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(5, 384, generator=g), torch.randn(384, 384, generator=g)
    with fixed_threads(1):
        one = x @ w
    with fixed_threads(most):
        many = x @ w
    return torch.equal(one, many)


class AdaptiveThreads:
    """`with threads(key): ...` runs the block at the thread count that is fastest for calls of that key.

    The count in force before the block (torch's, set by `threads=`) is the maximum and is restored afterwards,
    so the rest of the program (the learning update) is untouched. A block that raises is not timed."""

    def __init__(self, first_interval=4, max_interval=64, smoothing=0.5):
        self.first_interval, self.max_interval, self.smoothing = first_interval, max_interval, smoothing
        self._choices = {}
        self.idle = IdleCores()
        self.used = collections.Counter()  # blocks run at each thread count

    def summary(self):
        """'CPU threads per step: 2 on 97%, 1 on 3%' (None before the first adaptive step)."""
        total = sum(self.used.values())
        shares = ", ".join(f"{n} on {c / total:.0%}" for n, c in self.used.most_common())
        return f"CPU threads per step: {shares}" if total else None

    def reset(self):
        """Forget all timings (the call's cost changed: another planner)."""
        self._choices.clear()
        self.used.clear()

    def choice(self, key, most):
        if (key, most) not in self._choices:
            self._choices[key, most] = _Choice(most, self.first_interval, self.max_interval, self.smoothing)
        return self._choices[key, most]

    @contextlib.contextmanager
    def __call__(self, key=None):
        most = torch.get_num_threads()
        if most == 1:
            yield 1
            return
        if not self._choices and not products_thread_independent(most):
            warnings.warn(
                "matrix products here give other bits at other thread counts (MKL_CBWR=AUTO,STRICT was not set "
                "before the first product: call dream_mpc.reproducible_products() first, as train.py and evaluate.py "
                "do; "
                "or the BLAS is not MKL), so adaptive CPU threads make repeated runs differ in the last bits; "
                "plan_threads=N fixes the count",
                stacklevel=3,
            )
        choice = self.choice(key, most)
        idle = self.idle.poll()
        if idle is not None:
            for c in self._choices.values():
                c.note_idle(idle)
        n = choice.pick()
        self.used[n] += 1
        torch.set_num_threads(n)
        start = time.perf_counter()
        try:
            yield n
        finally:
            torch.set_num_threads(most)
        choice.record(n, time.perf_counter() - start)


@contextlib.contextmanager
def fixed_threads(n):
    """`with fixed_threads(n): ...` runs the block at n threads and restores the count afterwards."""
    most = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(most)
