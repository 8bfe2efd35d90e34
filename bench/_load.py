"""The machine's load during a benchmark's rounds, judged over windows /proc/stat resolves.

A round is taken under load when other processes (not the benchmark, not what it runs)
used more than OTHERS_LIMIT of the machine's CPU during it: its figures say more about the
neighbours than about cpo. Others' CPU is all that /proc/stat counts as busy minus the
benchmark's own, its waited-for children's (cpo, agents, git) and its running
descendants' (a server it started).

/proc/stat counts in ticks (10 ms at USER_HZ 100): over a 17 ms round of `python -c pass`
on 2 cores, one tick of a kernel thread is 30 % of the machine, and the reading's own
rounding is as large. Below about a second the share is noise, so the rule is:

- a round lasting at least WINDOW seconds is judged alone;
- shorter rounds are pooled with the rounds after them, in the order they ran, until the
  pool lasts WINDOW (the rounds' own time, not the set-up between them); the pool is
  judged as a whole and its verdict is each of its rounds'. A last pool still shorter
  joins the window before it; with no window before it, its rounds are not judged (a
  quiet verdict needs a whole window);
- a short round is also judged alone on what exceeds its reading's error (MARGIN_TICKS
  ticks), so that a burst that took the whole machine during it is not averaged away.

The 1-minute load average before and after is recorded too; it cannot tell our own
processes from others', so it is recorded, not judged.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

OTHERS_LIMIT = float(os.environ.get("CPO_BENCH_OTHERS_LIMIT", "0.10"))
WINDOW = float(os.environ.get("CPO_BENCH_LOAD_WINDOW", "1.0"))
CORES = os.cpu_count() or 1
TICK = 1 / os.sysconf("SC_CLK_TCK")
# A tick of another process's work and the rounding of the two readings around the round.
MARGIN_TICKS = 3


@dataclass(frozen=True)
class RoundLoad:
    label: str
    before: float  # 1-minute load average
    after: float
    wall: float  # seconds the round lasted
    # CPU seconds other processes used meanwhile, as read: tick rounding can make it
    # negative. It is kept so, for the rounding errors of pooled rounds to cancel out
    # rather than add up (clamped at 0 each, 60 rounds of 17 ms would sum to a load).
    others_cpu: float


@dataclass(frozen=True)
class Rule:
    limit: float = OTHERS_LIMIT
    window: float = WINDOW
    cores: int = CORES
    tick: float = TICK
    margin_ticks: int = MARGIN_TICKS

    def share(self, others_cpu: float, wall: float) -> float:
        """Others' share of the machine's CPU over `wall` seconds."""
        return max(0.0, others_cpu) / (max(wall, 1e-6) * self.cores)

    def long_enough(self, wall: float) -> bool:
        return wall >= self.window

    def over(self, others_cpu: float, wall: float) -> bool:
        """Whether others used more than the limit: plainly over a whole window, beyond the
        reading's error over a shorter time (there only a burst can show)."""
        slack = 0.0 if self.long_enough(wall) else self.margin_ticks * self.tick
        return others_cpu - slack > self.limit * wall * self.cores


@dataclass(frozen=True)
class Window:
    first: int  # indices of its first and last round
    last: int
    wall: float
    others_cpu: float


def pool(rounds: Sequence[RoundLoad], rule: Rule, *, final: bool = True) -> list[Window]:
    """The rounds' windows: each closes once it lasts `rule.window`. With `final` (all
    rounds recorded), a last window still shorter joins the one before it."""
    out: list[Window] = []
    start, wall, cpu = 0, 0.0, 0.0
    for i, r in enumerate(rounds):
        wall, cpu = wall + r.wall, cpu + r.others_cpu
        if rule.long_enough(wall):
            out.append(Window(start, i, wall, cpu))
            start, wall, cpu = i + 1, 0.0, 0.0
    if start < len(rounds):
        if final and out:
            prev = out.pop()
            out.append(Window(prev.first, len(rounds) - 1, prev.wall + wall, prev.others_cpu + cpu))
        else:
            out.append(Window(start, len(rounds) - 1, wall, cpu))
    return out


@dataclass(frozen=True)
class Verdict:
    round: RoundLoad
    window: Window
    loaded: bool
    judged: bool  # its window lasted long enough for a quiet verdict


def judge(rounds: Sequence[RoundLoad], rule: Rule | None = None) -> list[Verdict]:
    """One verdict per round: loaded when its window is, or when it is by itself (a long
    round plainly, a short one beyond its reading's error)."""
    rule = rule or Rule()
    verdicts = []
    for w in pool(rounds, rule):
        w_over = rule.over(w.others_cpu, w.wall)
        for r in rounds[w.first : w.last + 1]:
            loaded = w_over or rule.over(r.others_cpu, r.wall)
            verdicts.append(Verdict(r, w, loaded, rule.long_enough(w.wall)))
    return verdicts


ROUNDS: list[RoundLoad] = []


def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) * TICK


def _our_seconds() -> float:
    """CPU seconds of this process, of every child it has waited for (cpo, agents, git),
    and of its descendants still running (a server it started, bench_serve's `cpo serve`,
    with the children those have waited for): until waited for, a child's CPU is in no
    rusage of ours, and it would be counted as another process's."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime + _live_descendants()


def _live_descendants() -> float:
    """CPU seconds (their own and their waited children's) of this process's descendants
    still alive, from /proc (0 elsewhere)."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return 0.0
    for name in names:
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # After the command's closing parenthesis: state ppid ... utime stime cutime cstime
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(name)
        parent[pid] = int(fields[1])
        cpu[pid] = sum(int(f) for f in fields[11:15]) * TICK
    ours = {os.getpid()}
    total = 0.0
    grew = True
    while grew:  # the tree under us, level by level (no process lists its children)
        grew = False
        for pid, ppid in parent.items():
            if ppid in ours and pid not in ours:
                ours.add(pid)
                total += cpu[pid]
                grew = True
    return total


def _span(rounds: Sequence[RoundLoad], w: Window) -> str:
    n = w.last - w.first + 1
    return f"{n} rounds, {rounds[w.first].label} … {rounds[w.last].label}, {w.wall:.2f} s"


@contextmanager
def round_load(label: str) -> Iterator[None]:
    """Record the load around one round, say what can be said of it alone, and judge the
    pool of short rounds it closes."""
    before, busy, ours, start = os.getloadavg()[0], _busy_seconds(), _our_seconds(), time.time()
    yield
    wall = max(time.time() - start, 1e-6)
    others = (_busy_seconds() - busy) - (_our_seconds() - ours)
    r = RoundLoad(label, before, os.getloadavg()[0], wall, others)
    ROUNDS.append(r)
    rule = Rule()
    mark = "  UNDER LOAD" if rule.over(others, wall) else ""
    short = ""
    if not rule.long_enough(wall):
        short = (
            f" over {wall * 1000:.0f} ms, under the {rule.window:g} s a judgement needs "
            f"(one tick is {rule.tick / (wall * rule.cores):.0%}): pooled with the rounds after it"
        )
    print(
        f"  [{label}: load average {r.before:.2f} → {r.after:.2f}, "
        f"others used {rule.share(others, wall):.0%} of the CPU{short}{mark}]",
        flush=True,
    )
    w = pool(ROUNDS, rule, final=False)[-1]
    if w.first < w.last and rule.long_enough(w.wall):
        mark = "  UNDER LOAD" if rule.over(w.others_cpu, w.wall) else ""
        print(
            f"  [pooled ({_span(ROUNDS, w)}): others used "
            f"{rule.share(w.others_cpu, w.wall):.0%} of the CPU{mark}]",
            flush=True,
        )


def load_note() -> str:
    """One line for a result table: how loaded the machine was during its rounds."""
    if not ROUNDS:
        return "load: not recorded"
    rule = Rule()
    verdicts = judge(ROUNDS, rule)
    windows = pool(ROUNDS, rule)
    loaded = sum(v.loaded for v in verdicts)
    unjudged = [v for v in verdicts if not v.judged and not v.loaded]
    if loaded:
        verdict = f"**{loaded} of {len(ROUNDS)} rounds taken under load**"
        verdict += " (not quiet-machine figures)"
    elif unjudged:
        verdict = (
            f"**{len(unjudged)} of {len(ROUNDS)} rounds not judged**: together "
            f"{unjudged[0].window.wall:.2f} s, under the {rule.window:g} s a judgement needs"
        )
    else:
        verdict = f"all {len(ROUNDS)} rounds quiet"
    short = sum(not rule.long_enough(r.wall) for r in ROUNDS)
    pooled = f", {short} rounds under {rule.window:g} s pooled" if short else ""
    tail = pool(ROUNDS, rule, final=False)[-1]
    if tail.first > 0 and not rule.long_enough(tail.wall):  # it joined the window before
        n = tail.last - tail.first + 1
        pooled += f", the last {n} ({tail.wall:.2f} s) with the window before them"
    spans = [(w.others_cpu, w.wall) for w in windows]
    spans += [(r.others_cpu, r.wall) for r in ROUNDS if rule.long_enough(r.wall)]
    worst = max(rule.share(cpu, wall) for cpu, wall in spans)
    return (
        f"load: {verdict}; other processes used at most {worst:.0%} of the CPU in a window "
        f"(limit {rule.limit:.0%}; windows of ≥ {rule.window:g} s{pooled}); 1-minute load "
        f"average {min(r.before for r in ROUNDS):.2f}–{max(r.after for r in ROUNDS):.2f}"
    )


def refusal() -> str | None:
    """Why figures from these rounds may not go into bench/README.md, if they may not."""
    verdicts = judge(ROUNDS)
    loaded = [v.round.label for v in verdicts if v.loaded]
    if loaded:
        return f"rounds under load: {', '.join(loaded)}"
    short = [v for v in verdicts if not v.judged]
    if short:
        return (
            f"rounds too short to judge the load ({short[0].window.wall:.2f} s together, "
            f"under {WINDOW:g} s): {', '.join(v.round.label for v in short)}"
        )
    return None
