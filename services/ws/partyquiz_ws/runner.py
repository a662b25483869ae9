"""The owner loop of one game: hold the lease, apply inbox batches, commit, fire timers.

Owns the exactly-once cycle: read a batch after the last applied id, apply it to the pure state
machine, then ONE fenced commit per batch that renews the lease, publishes the batch's frames
and records how far it published -- and, ``snapshot_every`` seconds after the last save at
the latest (a game that is not busy: with a commit it makes anyway from half that on) or at
once on a timer, a phase change, the end of the game or a stop, saves the state as a snapshot.
Idle owners renew their leases on a grid all games share, so a replica's renewals leave
together.
Invariant: the inbox is trimmed only up to the last SNAPSHOTTED entry, so every entry whose
outcome (a receipt, say) has been published is either in the snapshot or still in the inbox; a
new owner loads the snapshot and replays the entries after it (``apply`` is pure and entries
carry the time they were received at, so it reaches the same state), publishing only what
comes after the recorded published id. Timers are never replayed: a tick forces a snapshot.
Timers come from ``next_deadline`` of the state, so a replica taking over keeps them. It never
touches WebSockets; frames reach clients through the bus and ``fanout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import cast

import orjson

from partyquiz_core import game
from partyquiz_core.ids import GameId
from partyquiz_core.protocol import Phase
from partyquiz_ws.backends import (
    Backend,
    Batch,
    Payload,
    Publication,
    Snapshot,
    id_after,
    replica_channel,
)
from partyquiz_ws.engine import (
    Engine,
    Outcome,
    decode_snapshot,
    encode_snapshot,
    is_ended,
    results_payload,
)
from partyquiz_ws.metrics import WsMetrics

log = logging.getLogger(__name__)

BATCH_SIZE = 512
# Longest a batch waits for more entries before it is committed (receipt latency bound).
MAX_COMMIT_DELAY = 0.2
# While commands keep coming (the last commit was under BUSY_SECONDS ago), a batch gathers
# for at least GATHER_SECONDS: every commit also costs a publish and a delivery pass on each
# replica, and during a burst of 10 000 answers in a second batches of two or three answers
# spent more CPU committing than applying. A command after a quiet spell commits at once.
GATHER_SECONDS = 0.002
BUSY_SECONDS = 0.05
# A read that comes back full means more entries wait in the inbox already: the owner reads
# on without gathering (they have piled up) and, with Redis, once its gathering time is up,
# commits when a read comes back short or at least this many applied entries wait. In a
# burst of 10 000 answers in a second the owner fell behind, and answers waited in the inbox
# for over half a second while it slept its gathering time and committed every second batch.
BACKLOG_COMMIT = 4 * BATCH_SIZE
# Default of the ``snapshot_interval_seconds`` setting.
SNAPSHOT_EVERY = 0.5
# A replica silent this long has failed (see server.HEARTBEAT_SECONDS); when one that served
# players of a game fails during a question, the question stays open this long after the
# failure (at most MAX_HOLD past its deadline) for them to come back.
FAILED_AFTER = 2.0
SUSPECT_AFTER = 1.0  # silent this long at the deadline: wait and see
SUSPECT_RECHECK = 0.25
FAILOVER_HOLD_SECONDS = 5.0
MAX_HOLD = game.MAX_OUTAGE_CREDIT_SECONDS
Clock = Callable[[], float]


class LeaseLostError(Exception):
    """Another replica owns the game now; stop applying."""


class GameRunner:
    """Tries to own one game for as long as this replica has clients in it."""

    def __init__(
        self,
        game_id: GameId,
        backend: Backend,
        engine: Engine,
        replica_id: str,
        lease_ttl: float,
        tick_grace: float,
        metrics: WsMetrics,
        on_started: Callable[[GameId], Awaitable[None]],
        on_results: Callable[[], None],
        clock: Clock = time.time,
        snapshot_every: float = SNAPSHOT_EVERY,
        deliver_here: Callable[[Batch], None] | None = None,
    ) -> None:
        self.game_id = game_id
        self._backend = backend
        self._engine = engine
        self._replica = replica_id
        self._ttl = lease_ttl
        self._grace = tick_grace
        self._metrics = metrics
        self._on_started = on_started
        self._on_results = on_results
        self._clock = clock
        # With a bus between processes, what this replica publishes reaches its own
        # connections from here, straight after the commit, not back through the bus; its
        # own reply channel is then not published at all (nobody else listens to it).
        self._deliver_here = deliver_here if not backend.keeps_objects else None
        # An in-process backend keeps the state object itself: saving it costs nothing.
        self._snapshot_every = 0.0 if backend.keeps_objects else snapshot_every
        # Where a commit is a round trip, a publish and a pass on every replica, an owner
        # behind its inbox holds its commit for more entries; in-process commits cost little.
        self._backlog_commit = 0 if backend.keeps_objects else BACKLOG_COMMIT
        self.owning = False
        self._stopping = asyncio.Event()
        self._committed_id = "0-0"  # the snapshot this owner's next commit must replace
        self._logged = 0  # closed-question logs already stored
        self._sources: set[str] = set()  # replicas whose players sent this game commands
        self._hold: tuple[int, float] = (-1, 0.0)  # (question, until): see _hold_for_failover
        # Commits are named so that a commit that failed on its way back can be recognised
        # once the game is read again; the batches it would have delivered here wait for that.
        self._name = f"{replica_id}:{uuid.uuid4().hex[:12]}"
        self._commits = 0
        self._unsure: tuple[str, str, list[Batch]] | None = None  # (commit, last id, batches)

    def stop(self) -> None:
        """Finish the batch in hand, give the lease up and return (within a lease third)."""
        self._stopping.set()

    async def run(self) -> None:
        """Loop until stopped: acquire the lease when free, then own the game."""
        retry = self._ttl / 3
        try:
            while not self._stopping.is_set():
                try:
                    acquired = await self._backend.lease.acquire(
                        self.game_id, self._replica, self._ttl
                    )
                except Exception as exc:
                    log.warning("lease check failed (%s); retrying", type(exc).__name__)
                    acquired = False
                if acquired:
                    try:
                        await self._own()
                    except LeaseLostError:
                        log.warning("lost the lease of a game to another replica")
                    except Exception as exc:  # Redis unreachable, ...: the inbox keeps all
                        log.warning(
                            "owning a game failed (%s); retrying", type(exc).__name__, exc_info=True
                        )
                    finally:
                        self._set_owning(False)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(retry):
                        await self._stopping.wait()
        finally:
            if self.owning:
                self._set_owning(False)
            with contextlib.suppress(Exception):
                await asyncio.shield(self._backend.lease.release(self.game_id, self._replica))

    def _held(self, state: game.GameState) -> float:
        question, until = self._hold
        return until if question in (state.question_index, -1) else 0.0

    async def _hold_for_failover(self, state: game.GameState, now: float) -> bool:
        """Whether to keep a question open past its deadline because a replica through which
        players of this game were connected failed while it was open: they get
        ``FAILOVER_HOLD_SECONDS`` from the failure to come back elsewhere (where they get the
        lost time back, ``game.Reconnect``). Decided from heartbeats: a replica silent since
        before the deadline is waited on until it speaks again or counts as failed."""
        if state.phase is not Phase.QUESTION or state.deadline is None:
            return False
        question, until = self._hold
        if question == state.question_index:
            return now < until
        limit = state.quiz.questions[state.question_index].time_limit_seconds
        opened = state.deadline - limit
        others = sorted(self._sources - {self._replica})
        try:
            seen = await self._backend.limits.last_seen(others)
        except Exception:
            seen = {}
        ages = [now - t for t in seen.values() if t >= opened]
        failed = [now - age for age in ages if age >= FAILED_AFTER]
        if failed:
            until = min(max(failed) + FAILOVER_HOLD_SECONDS, state.deadline + MAX_HOLD)
            log.warning("a replica failed during a question; it stays open to %.1f", until)
            self._hold = (state.question_index, until)
            return now < until
        if any(age >= SUSPECT_AFTER for age in ages):
            self._hold = (-1, now + SUSPECT_RECHECK)  # ask again shortly
            return True
        self._hold = (state.question_index, 0.0)
        return False

    def _set_owning(self, owning: bool) -> None:
        if owning != self.owning:
            self.owning = owning
            self._metrics.owned_games.inc() if owning else self._metrics.owned_games.dec()

    async def _own(self) -> None:
        snapshot = await self._backend.snapshots.load(self.game_id)
        if snapshot is None:
            await self._backend.lease.release(self.game_id, self._replica)
            raise LeaseLostError("no snapshot")
        state = decode_snapshot(snapshot)
        last_id = self._committed_id = snapshot.last_id
        # Entries up to here were applied and published by an earlier owner: replay them quietly.
        published_id = snapshot.published_id or last_id
        self._deliver_unsure(snapshot, published_id)
        caught_up = False  # past published_id: entries from here on are published
        self._logged = len(snapshot.log)
        if state.version > 0 or last_id != "0-0":
            self._metrics.lease_takeovers.inc()
        self._set_owning(True)
        renew_every = self._ttl / 3
        renewed = time.monotonic()
        committed, out, quiet = state, Outcome(), Outcome()
        dirty = False  # frames or results not yet committed
        unsaved = False  # state newer than the stored snapshot
        force_save = False  # a timer fired: the snapshot must be saved with this commit
        commit_due = 0.0
        save_due = time.monotonic()
        commit_cost = 0.0
        last_commit = 0.0  # monotonic time of this owner's last commit
        backlog = False  # the last read came back full: more entries are waiting
        uncommitted = 0  # entries applied since the last commit
        while True:
            if not dirty and time.monotonic() >= _renewal_due(renewed, renew_every):
                if not await self._backend.lease.renew(self.game_id, self._replica, self._ttl):
                    raise LeaseLostError("renew refused")
                renewed = time.monotonic()
            deadline = game.next_deadline(state)
            now = self._clock()
            wait = _renewal_due(renewed, renew_every) - time.monotonic()
            if deadline is not None:
                wait = min(wait, max(deadline + self._grace, self._held(state)) - now)
            if dirty:
                wait = min(wait, commit_due - time.monotonic())
            elif unsaved:
                wait = min(wait, save_due - time.monotonic())
            if dirty and wait > 0 and not backlog:
                # Gathering a batch: let entries pile up and read them in one go rather than
                # waking for each one.
                await asyncio.sleep(wait)
                wait = 0.0
            entries = await self._backend.inbox.read(
                self.game_id, last_id, BATCH_SIZE, max(0.0, wait)
            )
            now = self._clock()
            # Entries come in id order: once one is past what was published, all are. Those
            # up to it were published by an earlier owner and are replayed quietly.
            first_new = 0 if caught_up else _first_after(entries, published_id)
            if first_new > 0:
                replayed = [raw for _, raw in entries[:first_new]]
                state = self._engine.apply_entries(state, replayed, now, quiet)
            if first_new < len(entries):
                caught_up = True
                fresh = [raw for _, raw in entries[first_new:]]
                state = self._engine.apply_entries(state, fresh, now, out)
            if entries:
                last_id = entries[-1][0]
            backlog = len(entries) >= BATCH_SIZE
            if entries:
                unsaved = True
                quiet = Outcome()
                uncommitted += len(entries)
            # The batch's last entry was new (not replayed): it has frames to publish.
            if entries and caught_up and not dirty:
                # Under load, gather more entries per commit so committing stays a bounded
                # share of the time (receipts wait a bit). A command after a quiet spell (the
                # host's next after a reveal, say) is committed at once.
                dirty = True
                monotonic = time.monotonic()
                delay = 0.0
                if monotonic - last_commit < BUSY_SECONDS:
                    delay = min(
                        MAX_COMMIT_DELAY, self._ttl / 4, max(3 * commit_cost, GATHER_SECONDS)
                    )
                commit_due = monotonic + delay
            for source in out.sources:
                self._sources.add(source)
            out.sources.clear()
            deadline = game.next_deadline(state)
            drained = len(entries) < BATCH_SIZE  # answers still queued count before the timer
            due = deadline is not None and now >= deadline + self._grace
            if drained and due and await self._hold_for_failover(state, now):
                due = False
            if drained and due:
                ticked = self._engine.tick(state, now, out)
                if ticked is not state:
                    state, dirty, commit_due = ticked, True, 0.0
                    unsaved = force_save = True
            stopping = self._stopping.is_set()
            monotonic = time.monotonic()
            save = unsaved and (stopping or force_save or monotonic >= save_due)
            # With nothing to publish, commit only when the snapshot is due.
            # With a backlog, commit what was applied once it is read or large enough.
            held = backlog and uncommitted < self._backlog_commit
            due_now = monotonic >= commit_due and not held
            commit_now = (stopping or due_now) if dirty else save
            if commit_now:
                # A game that is not busy saves with a commit it makes anyway once its
                # snapshot is due within half an interval, rather than in a commit of its own
                # when it falls due: a replica owning many games each answered a couple of
                # times a second made a second commit per answer, to save. A busy game
                # (many commits a second) still saves once per interval.
                early = (
                    monotonic - last_commit >= BUSY_SECONDS
                    and monotonic >= save_due - self._snapshot_every / 2
                )
                save = unsaved and (save or early or _must_save(committed, state))
                started = time.perf_counter()
                await self._commit(committed, state, last_id, out, now, save=save)
                if save and self._snapshot_every > 0:
                    save_due = time.monotonic() + self._snapshot_every
                else:
                    commit_cost = time.perf_counter() - started
                committed, out, dirty, uncommitted = state, Outcome(), False, 0
                last_commit = time.monotonic()
                published_id = last_id
                if save:
                    unsaved = force_save = False
                renewed = time.monotonic()
            if stopping:
                return

    def _deliver_unsure(self, snapshot: Snapshot, published_id: str) -> None:
        """Deliver the batches for this replica's own connections of a commit that failed on
        its way back (its reply lost) if Redis made it after all: it published the rest, and
        replaying its entries publishes nothing again. If it was not made, the replay that
        follows publishes and delivers them."""
        unsure, self._unsure = self._unsure, None
        if unsure is None or self._deliver_here is None:
            return
        commit_id, last_id, here = unsure
        if snapshot.commit_id == commit_id and published_id == last_id:
            log.info("a commit whose reply was lost had been made; delivering its batches")
            for batch in here:
                self._deliver_here(batch)

    async def _commit(
        self,
        before: game.GameState,
        state: game.GameState,
        last_id: str,
        out: Outcome,
        now: float,
        *,
        save: bool,
    ) -> None:
        publications: list[Publication] = []
        here: list[Batch] = []  # delivered to this replica's own connections after the commit
        own = replica_channel(self._replica)
        src = self._replica if self._deliver_here is not None else ""
        # Replies first: a joiner's welcome must precede the broadcasts that follow it.
        game_channel_items = None
        for channel, items in out.channel_items():
            payload = Batch(self.game_id, self._clock(), items, src)
            if channel.startswith("pq:g:"):
                game_channel_items = Publication(channel, payload)
            elif src and channel == own:
                here.append(payload)
            else:
                publications.append(Publication(channel, payload))
        if game_channel_items is not None:
            publications.append(game_channel_items)
            if src:
                here.append(cast(Batch, game_channel_items.payload))
        results = None
        if is_ended(state) and not is_ended(before):
            results = orjson.dumps(results_payload(state, now))
        new_log: list[tuple[int, bytes]] = []
        snapshot: Snapshot | None = None
        if save and self._backend.keeps_objects:
            snapshot = Snapshot(state=b"", last_id=last_id, live=state)
        elif save:
            base, new_log = encode_snapshot(state, self._logged)
            snapshot = Snapshot(state=base, last_id=last_id)
        self._commits += 1
        commit_id = f"{self._name}:{self._commits}"
        try:
            ok = await self._backend.snapshots.commit(
                self.game_id,
                self._replica,
                self._ttl,
                snapshot,
                publications,
                results,
                expected_last_id=self._committed_id,
                new_log=new_log,
                published_id=last_id,
                commit_id=commit_id,
            )
        except Exception:
            # Made or not: the owner starts over from what Redis holds and finds out there.
            if here:
                self._unsure = (commit_id, last_id, here)
            raise
        if not ok:
            raise LeaseLostError("commit refused")
        if self._deliver_here is not None:
            for batch in here:
                self._deliver_here(batch)
        if snapshot is not None:
            self._committed_id = last_id
            self._logged = len(state.log)
        self._metrics.commands_applied.labels("ok").inc(out.applied)
        self._metrics.commands_applied.labels("rejected").inc(out.rejected)
        for result, count in Counter(out.answers).items():
            self._metrics.answers.labels(result).inc(count)
        if before.phase is Phase.LOBBY and state.phase is not Phase.LOBBY:
            await self._on_started(self.game_id)
        if results is not None:
            self._on_results()


def _renewal_due(renewed: float, every: float) -> float:
    """When a lease renewed at ``renewed`` (monotonic) is renewed next: on a grid of half
    ``every`` that every game of this process shares, more than half ``every`` and at most
    ``every`` later. The games a replica owns with nothing to commit renew at the same
    moments, so their renewals leave together as one command, not one per game."""
    step = every / 2
    return (math.floor(renewed / step) + 2) * step


def _first_after(entries: list[tuple[str, Payload]], published_id: str) -> int:
    """The position of the first entry past ``published_id`` (``len(entries)`` if none)."""
    for position, (entry_id, _) in enumerate(entries):
        if id_after(entry_id, published_id):
            return position
    return len(entries)


def _must_save(before: game.GameState, state: game.GameState) -> bool:
    """Whether a commit must carry a snapshot: a phase change or the end of the game."""
    return (
        state.phase is not before.phase
        or state.question_index != before.question_index
        or is_ended(state)
    )
