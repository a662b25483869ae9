"""python-socketio peer for PartyQuiz's benchmarks: the easy Python choice (python-socketio on
uvicorn, WebSocket transport only, compression off), playing the same game as game.cjs with the
same JSON messages, each one the data of an event named after its ``type``.

It runs in a virtual environment of its own in the benchmark cache (pinned in
pysocketio-requirements.txt, installed by bench/install.sh), never in the project's.
Usage: python pysocketio_server.py --port P --quiz quiz.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import socketio  # type: ignore[import-not-found]
import uvicorn  # type: ignore[import-not-found]
import uvloop  # type: ignore[import-not-found]

LEADERBOARD_SIZE = 5
POINTS = {"standard": 1000, "double": 2000, "none": 0}


def score(question: dict[str, Any], choices: list[int], elapsed: float) -> tuple[bool, int]:
    base = POINTS[question.get("points") or "standard"]
    if sorted(choices) != sorted(question["correct"]):
        return False, 0
    if elapsed < 0.5:
        return True, base
    t = min(elapsed / question["time_limit_seconds"], 1.0)
    return True, round(base * (1 - t / 2))


class Game:
    """game.cjs in Python: phases, one answer per player and question, scoring, ranks."""

    def __init__(self, quiz: dict[str, Any]) -> None:
        self.quiz = quiz
        self.version = 0
        self.phase = "lobby"
        self.index = -1
        self.players: dict[str, dict[str, Any]] = {}
        self.opened_at = 0.0
        self.deadline = 0.0
        self.answered = 0
        self.distribution: list[int] = []
        self.next_id = 1

    def join(self, nickname: str, device_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        pid = f"p{self.next_id}"
        self.next_id += 1
        self.players[pid] = {"id": pid, "nickname": nickname, "score": 0, "streak": 0}
        self.players[pid]["answer"] = None
        self.version += 1
        welcome = {
            "version": self.version,
            "type": "welcome",
            "player_id": pid,
            "nickname": nickname,
            "resume_token": f"r.{pid}.{device_id}",
            "state": {"phase": self.phase, "player_count": len(self.players)},
        }
        lobby = {
            "version": self.version,
            "type": "lobby",
            "joined": [{"player_id": pid, "nickname": nickname}],
            "left": [],
            "player_count": len(self.players),
            "joining_locked": False,
        }
        return welcome, lobby

    def command(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        if kind in ("start", "next"):
            if self.phase in ("lobby", "leaderboard"):
                return self.open_question()
            if self.phase == "reveal":
                return self.leaderboard()
        if kind == "skip" and self.phase == "question":
            return self.close()
        raise ValueError(f"illegal {kind} in {self.phase}")

    def open_question(self) -> list[tuple[str, dict[str, Any]]]:
        self.index += 1
        q = self.quiz["questions"][self.index]
        now = time.time()
        self.phase, self.opened_at = "question", now
        self.deadline = now + q["time_limit_seconds"]
        self.answered = 0
        self.distribution = [0] * len(q["choices"])
        for p in self.players.values():
            p["answer"] = None
        self.version += 1
        msg = {
            "version": self.version,
            "type": "question",
            "index": self.index,
            "total": len(self.quiz["questions"]),
            "text": q["text"],
            "kind": q["kind"],
            "choices": [c["text"] for c in q["choices"]],
            "time_limit": q["time_limit_seconds"],
            "points": q.get("points") or "standard",
            "deadline": self.deadline,
            "server_now": now,
        }
        return [("everyone", msg)]

    def answer(self, pid: str, index: int, choices: list[int]) -> list[tuple[str, dict[str, Any]]]:
        p = self.players.get(pid)
        if p is None or self.phase != "question" or index != self.index:
            return [(pid, {"type": "error", "code": "wrong_question", "message": "no such"})]
        now = time.time()
        if now > self.deadline:
            return [(pid, {"type": "error", "code": "late", "message": "too late"})]
        if p["answer"] is not None:
            return [(pid, {"type": "error", "code": "duplicate", "message": "already"})]
        q = self.quiz["questions"][self.index]
        if any(not isinstance(c, int) or not 0 <= c < len(q["choices"]) for c in choices):
            return [(pid, {"type": "error", "code": "invalid_choice", "message": "bad choice"})]
        elapsed = now - self.opened_at
        p["answer"] = (choices, elapsed)
        for c in choices:
            self.distribution[c] += 1
        self.answered += 1
        self.version += 1
        out: list[tuple[str, dict[str, Any]]] = [
            (
                pid,
                {
                    "version": self.version,
                    "type": "answer_receipt",
                    "question_index": self.index,
                    "choices": choices,
                    "elapsed": elapsed,
                },
            ),
            (
                "host",
                {
                    "version": self.version,
                    "type": "answer_count",
                    "question_index": self.index,
                    "answered": self.answered,
                    "total": len(self.players),
                },
            ),
        ]
        if self.answered == len(self.players):
            out += self.close()
        return out

    def tick(self) -> list[tuple[str, dict[str, Any]]]:
        if self.phase == "question" and time.time() >= self.deadline:
            return self.close()
        return []

    def close(self) -> list[tuple[str, dict[str, Any]]]:
        q = self.quiz["questions"][self.index]
        for p in self.players.values():
            if p["answer"] is None:
                p["streak"], p["last"] = 0, (False, 0)
                continue
            correct, points = score(q, *p["answer"])
            p["score"] += points
            p["streak"] = p["streak"] + 1 if correct else 0
            p["last"] = (correct, points)
        ranked = sorted(self.players.values(), key=lambda p: -p["score"])
        for rank, p in enumerate(ranked, 1):
            p["rank"] = rank
        self.phase = "reveal"
        self.version += 1
        reveal = {
            "version": self.version,
            "type": "reveal",
            "question_index": self.index,
            "correct": q["correct"],
            "distribution": self.distribution,
            "answered": self.answered,
            "total": len(self.players),
            "results": {},
        }
        out: list[tuple[str, dict[str, Any]]] = [("everyone", reveal)]
        for p in self.players.values():
            correct, points = p["last"]
            result = {
                "answered": p["answer"] is not None,
                "correct": correct,
                "points": points,
                "score": p["score"],
                "rank": p["rank"],
                "streak": p["streak"],
            }
            msg = {
                "version": self.version,
                "type": "personal_result",
                "question_index": self.index,
                "result": result,
            }
            out.append((p["id"], msg))
        return out

    def leaderboard(self) -> list[tuple[str, dict[str, Any]]]:
        self.phase = "leaderboard"
        self.version += 1
        top = sorted(self.players.values(), key=lambda p: -p["score"])[:LEADERBOARD_SIZE]
        entries = [
            {"rank": i + 1, "player_id": p["id"], "nickname": p["nickname"], "score": p["score"]}
            for i, p in enumerate(top)
        ]
        msg = {
            "version": self.version,
            "type": "leaderboard",
            "question_index": self.index,
            "entries": entries,
            "player_count": len(self.players),
        }
        return [("everyone", msg)]


def build(quiz: dict[str, Any]) -> Any:
    sio = socketio.AsyncServer(
        async_mode="asgi",
        transports=["websocket"],
        cors_allowed_origins="*",
        http_compression=False,
        max_http_buffer_size=4096,
    )
    game = Game(quiz)
    sids: dict[str, str] = {}  # player id -> sid
    players: dict[str, str] = {}  # sid -> player id
    state: dict[str, Any] = {"host": None, "timer": None}

    async def deliver(out: list[tuple[str, dict[str, Any]]]) -> None:
        for to, msg in out:
            if to == "everyone":
                await sio.emit(msg["type"], msg, room="game")
            elif to == "host":
                if state["host"]:
                    await sio.emit(msg["type"], msg, to=state["host"])
            elif to in sids:
                await sio.emit(msg["type"], msg, to=sids[to])
            if msg["type"] == "question":
                arm_timer()

    def arm_timer() -> None:
        if state["timer"]:
            state["timer"].cancel()
        delay = max(0.0, game.deadline - time.time()) + 0.001
        loop = asyncio.get_running_loop()
        state["timer"] = loop.call_later(delay, lambda: asyncio.ensure_future(deliver(game.tick())))

    @sio.on("join")  # type: ignore[misc]
    async def join(sid: str, msg: dict[str, Any]) -> None:
        welcome, lobby = game.join(str(msg.get("nickname")), str(msg.get("device_id")))
        sids[welcome["player_id"]] = sid
        players[sid] = welcome["player_id"]
        await sio.enter_room(sid, "game")
        await sio.emit("welcome", welcome, to=sid)
        if state["host"]:
            await sio.emit("lobby", lobby, to=state["host"])

    @sio.on("host")  # type: ignore[misc]
    async def host(sid: str, msg: dict[str, Any]) -> None:
        state["host"] = sid
        await sio.enter_room(sid, "game")
        hello = {"type": "host_welcome", "version": game.version, "phase": game.phase}
        await sio.emit("host_welcome", hello, to=sid)

    @sio.on("answer")  # type: ignore[misc]
    async def answer(sid: str, msg: dict[str, Any]) -> None:
        pid = players.get(sid, "")
        await deliver(game.answer(pid, msg.get("question_index", -1), msg.get("choices", [])))

    def command(kind: str) -> Any:
        async def handler(sid: str, msg: dict[str, Any] | None = None) -> None:
            if sid != state["host"]:
                return
            if game.phase == "question" and state["timer"]:
                state["timer"].cancel()
            try:
                out = game.command(kind)
            except ValueError as exc:
                error = {"type": "error", "code": "illegal", "message": str(exc)}
                await sio.emit("error", error, to=sid)
                return
            await deliver(out)

        return handler

    for kind in ("start", "next", "skip"):
        sio.on(kind, command(kind))
    return socketio.ASGIApp(sio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--quiz", required=True)
    args = parser.parse_args()
    with open(args.quiz) as f:
        quiz = json.load(f)
    config = uvicorn.Config(
        build(quiz),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        ws_per_message_deflate=False,
        backlog=1024,
        lifespan="off",
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.ensure_future(server.serve())  # handles SIGTERM itself
        # uvicorn offers no event for it
        while not server.started and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if server.started:
            sys.stdout.write("ready\n")
            sys.stdout.flush()
        await task

    uvloop.run(serve())  # what uvicorn picks by itself with uvicorn[standard]


if __name__ == "__main__":
    main()
