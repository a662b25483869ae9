// The host's big screen for one game: join code and QR, lobby with kick and lock, questions with
// countdown and live answer count, distribution at the reveal, leaderboard, podium; the host's
// controls (start, next, skip, pause/resume, end). The game service decides; this only asks.

import { h, replace, announce } from "./dom.js";
import { GameConnection, Countdown } from "./gameclient.js";
import { board, podium, distribution, choiceTiles } from "./views.js";

const HELLO_ERRORS = new Set(["token_invalid", "token_expired", "forbidden", "unknown_game", "game_ended", "service_unauthorized", "web_refused"]);
const RETRY_ERRORS = new Set(["web_unavailable", "unavailable"]);
const POINTS_LABEL = { double: "Double points", none: "No points", standard: "" };

const tokenKey = (gameId) => `partyquiz.host.game.${gameId}`;

function loadKey(gameId) {
  try {
    return JSON.parse(window.localStorage.getItem(tokenKey(gameId)) || "null");
  } catch {
    return null;
  }
}

/** Ask the web service for a fresh host token (another browser, a reload after 12 h ...). */
async function fetchKey(gameId, call) {
  const issued = await call(`/api/games/${gameId}/host-token`, { method: "POST" });
  const key = { host_token: issued.host_token, ws_url: issued.ws_url, join_code: issued.join_code };
  window.localStorage.setItem(tokenKey(gameId), JSON.stringify(key));
  return key;
}

export async function drawScreen(main, gameId, { call }) {
  document.body.classList.add("screen");
  main.classList.add("wide");
  const connBar = document.getElementById("conn");
  let stored = loadKey(gameId);
  if (!stored || !stored.host_token) {
    try {
      stored = await fetchKey(gameId, call);
    } catch (error) {
      if (error.status === 401) return undefined;
      replace(main,
        h("h1", {}, error.code === "game_ended" ? "This game is over" : "This game cannot be shown"),
        h("p", {}, error.message),
        h("p", {}, h("a", { href: `/host/games/${gameId}` }, "Results of this game"), " · ", h("a", { href: "/host" }, "Your quizzes")));
      return undefined;
    }
  }
  let refreshed = false;

  const model = {
    joinCode: stored.join_code,
    phase: null,
    drawn: null,
    players: new Map(),
    playerCount: 0,
    locked: false,
    question: null,
    questionCount: 0,
    deadline: null,
    serverNow: null,
    remaining: null,
    paused: false,
    answered: 0,
    reveal: null,
    leaderboard: null,
    endedReason: null,
    awaitingWelcome: false,
  };
  let countdown = null;
  let conn = null;
  const status = () => document.getElementById("screen-status");

  function say(text) {
    const el = status();
    if (el) el.textContent = text;
  }

  function command(type, extra = {}) {
    if (!conn.send({ type, ...extra })) say("Not connected to the game service; try again in a moment.");
    else say("");
  }

  const joinUrl = () => `${window.location.origin}/join/${model.joinCode}`;

  function controls(...buttons) {
    return h("div", { class: "host-controls", role: "group", "aria-label": "Game controls" },
      ...buttons,
      model.phase !== "ended" ? h("button", { type: "button", class: "danger", onclick: () => { if (window.confirm("End the game now for everyone?")) command("end"); } }, "End game") : null);
  }

  function corner() {
    return h("p", { class: "q-meta" },
      h("span", {}, "Join at ", h("strong", {}, `${window.location.host}/join`), " with code ", h("strong", { "data-testid": "corner-code" }, model.joinCode || "")),
      h("span", {}, `${model.playerCount} ${model.playerCount === 1 ? "player" : "players"}`));
  }

  function drawLobby() {
    document.title = `Join with ${model.joinCode} · PartyQuiz`;
    const playersList = h("ul", { class: "players", id: "players", "aria-label": "Players" });
    for (const [playerId, nickname] of model.players) {
      playersList.append(h("li", { dataset: { playerId } }, nickname,
        h("button", { type: "button", class: "secondary", "aria-label": `Remove ${nickname}`, onclick: () => command("kick", { player_id: playerId }) }, "Remove")));
    }
    replace(main,
      h("div", { class: "screen-grid" },
        h("section", { class: "join-box card", "aria-labelledby": "join-heading" },
          h("h1", { id: "join-heading", class: "join-url" }, "Join at ", h("strong", {}, `${window.location.host}/join`)),
          h("p", {}, "Game code"),
          h("p", { class: "join-code", id: "join-code", "data-testid": "join-code" }, model.joinCode || "…"),
          model.joinCode ? h("img", { class: "qr", src: `/qr/${model.joinCode}.svg`, alt: `QR code that opens ${joinUrl()}` }) : null,
          h("p", { class: "hint" }, "Scan the code with a phone camera to join.")),
        h("section", { "aria-labelledby": "players-heading" },
          h("h2", { id: "players-heading" }, h("span", { id: "player-count", "data-testid": "player-count" }, String(model.playerCount)), model.playerCount === 1 ? " player" : " players"),
          model.players.size ? playersList : h("p", {}, "Waiting for players to join…"),
          model.locked ? h("p", { class: "notice" }, "Joining is locked: no new players can join.") : null,
          controls(
            h("button", { type: "button", class: "big", id: "start", disabled: model.playerCount < 1, onclick: () => command("start") }, "Start the game"),
            h("button", { type: "button", class: "secondary", id: "lock", "aria-pressed": model.locked ? "true" : "false", onclick: () => command(model.locked ? "unlock" : "lock") }, model.locked ? "Unlock joining" : "Lock joining")),
          h("p", { class: "form-error", id: "screen-status", role: "alert" }))));
  }

  function drawQuestion() {
    const q = model.question;
    document.title = `Question ${q.index + 1} · PartyQuiz`;
    const countEl = h("span", { class: "timer-count", "aria-hidden": "true" });
    const fillEl = h("div", { class: "timer-fill" });
    const points = POINTS_LABEL[q.points];
    replace(main,
      corner(),
      h("p", { class: "q-meta" }, h("span", {}, `Question ${q.index + 1} of ${q.total}`), points ? h("span", { class: "notice" }, points) : null),
      h("h1", { class: "q-text" }, q.text),
      h("div", { class: `timer${model.paused ? " paused" : ""}`, id: "timer" }, countEl, h("div", { class: "timer-track", "aria-hidden": "true" }, fillEl), h("span", { class: "visually-hidden", id: "timer-text" })),
      model.paused ? h("p", { class: "notice" }, "Paused") : null,
      choiceTiles(q.choices),
      h("p", { class: "answered", id: "answered", "data-testid": "answered", "aria-live": "polite" }, answeredText()),
      controls(
        model.paused
          ? h("button", { type: "button", class: "big", id: "resume", onclick: () => command("resume_game") }, "Resume")
          : h("button", { type: "button", class: "secondary", id: "pause", onclick: () => command("pause") }, "Pause"),
        h("button", { type: "button", class: "secondary", id: "skip", onclick: () => command("skip") }, "Skip to the answer")),
      h("p", { class: "form-error", id: "screen-status", role: "alert" }));
    if (countdown) countdown.stop();
    countdown = new Countdown(countEl, fillEl, (s) => { document.getElementById("timer-text").textContent = `${s} seconds left`; });
    if (model.paused || model.deadline === null) countdown.freeze(model.remaining ?? 0, q.time_limit);
    else countdown.run(model.deadline, model.serverNow, q.time_limit);
  }

  function answeredText() {
    return `${model.answered} of ${model.playerCount} answered`;
  }

  function drawReveal() {
    const q = model.question;
    const r = model.reveal;
    document.title = "Answers · PartyQuiz";
    const poll = q.kind === "poll";
    replace(main,
      corner(),
      h("p", { class: "q-meta" }, h("span", {}, `Question ${q.index + 1} of ${q.total}`)),
      h("h1", { class: "q-text" }, q.text),
      distribution(q.choices, r.distribution, r.correct, { poll }),
      h("p", { class: "answered" }, `${r.answered} of ${r.total} answered`),
      controls(h("button", { type: "button", class: "big", id: "next", onclick: () => command("next") }, "Show the leaderboard")),
      h("p", { class: "form-error", id: "screen-status", role: "alert" }));
  }

  function drawLeaderboard() {
    document.title = "Leaderboard · PartyQuiz";
    const last = model.question && model.question.index + 1 >= model.question.total;
    replace(main,
      corner(),
      h("h1", {}, "Leaderboard"),
      board(model.leaderboard),
      controls(h("button", { type: "button", class: "big", id: "next", onclick: () => command("next") }, last ? "Show the podium" : "Next question")),
      h("p", { class: "form-error", id: "screen-status", role: "alert" }));
  }

  function drawPodium() {
    document.title = "Podium · PartyQuiz";
    replace(main,
      h("h1", {}, "Podium"),
      podium(model.leaderboard),
      controls(h("button", { type: "button", class: "big", id: "next", onclick: () => command("next") }, "Finish the game")),
      h("p", { class: "form-error", id: "screen-status", role: "alert" }));
  }

  function drawEnded() {
    document.title = "Game over · PartyQuiz";
    replace(main,
      h("h1", {}, "Game over"),
      h("p", {}, model.endedReason === "ended_by_host" ? "You ended the game." : "Thanks for playing!"),
      model.leaderboard && model.leaderboard.length ? board(model.leaderboard) : null,
      h("p", { class: "actions" },
        h("a", { class: "button", href: `/host/games/${gameId}` }, "See the results"),
        h("a", { class: "button secondary", href: "/host" }, "Back to your quizzes")));
  }

  function render() {
    const key = `${model.phase}:${model.question ? model.question.index : ""}:${model.paused}`;
    const fresh = key !== model.drawn;
    model.drawn = key;
    if (model.phase !== "question" && countdown) countdown.stop();
    const draw = { lobby: drawLobby, question: drawQuestion, reveal: drawReveal, leaderboard: drawLeaderboard, podium: drawPodium, ended: drawEnded }[model.phase];
    if (!draw) return;
    // Keep the host's focus on the same control when only numbers change.
    const focusedId = document.activeElement && document.activeElement.id;
    draw();
    const again = focusedId && document.getElementById(focusedId);
    if (again && !fresh) again.focus();
    else if (fresh) {
      const primary = main.querySelector(".host-controls .big") || main.querySelector("h1");
      if (primary) {
        if (primary.tagName === "H1") primary.setAttribute("tabindex", "-1");
        primary.focus({ preventScroll: true });
      }
    }
  }

  function applySnapshot(s) {
    model.phase = s.phase;
    model.playerCount = s.player_count;
    model.locked = s.joining_locked;
    model.questionCount = s.question_count;
    model.question = s.question;
    model.deadline = s.deadline;
    model.serverNow = s.server_now;
    model.remaining = s.remaining;
    model.paused = s.paused;
    model.answered = s.answered || 0;
    model.reveal = s.reveal;
    model.leaderboard = s.leaderboard;
    model.endedReason = s.ended_reason;
    if (s.players) model.players = new Map(s.players.map((p) => [p.player_id, p.nickname]));
    if (s.phase === "ended") conn.stop();
    render();
  }

  function receive(msg) {
    switch (msg.type) {
      case "host_welcome":
        model.awaitingWelcome = false;
        refreshed = false;
        if (msg.join_code) model.joinCode = msg.join_code;
        model.drawn = null;
        applySnapshot(msg.state);
        break;
      case "state":
        applySnapshot(msg.state);
        break;
      case "lobby":
        for (const p of msg.joined) {
          model.players.set(p.player_id, p.nickname);
          announce(`${p.nickname} joined.`);
        }
        for (const playerId of msg.left) model.players.delete(playerId);
        model.playerCount = msg.player_count;
        model.locked = msg.joining_locked;
        if (model.phase === "lobby") render();
        else {
          const answered = document.getElementById("answered");
          if (answered && model.phase === "question") answered.textContent = answeredText();
        }
        break;
      case "question":
        model.phase = "question";
        model.question = msg;
        model.deadline = msg.deadline;
        model.serverNow = msg.server_now;
        model.remaining = msg.time_limit;
        model.paused = false;
        model.answered = 0;
        model.reveal = null;
        render();
        announce(`Question ${msg.index + 1}: ${msg.text}`);
        break;
      case "answer_count":
        model.answered = msg.answered;
        model.playerCount = msg.total;
        if (model.phase === "question") {
          const el = document.getElementById("answered");
          if (el) el.textContent = answeredText();
        }
        break;
      case "reveal":
        model.phase = "reveal";
        model.reveal = msg;
        render();
        announce(`Time is up. ${msg.answered} of ${msg.total} answered.`);
        break;
      case "leaderboard":
        model.phase = "leaderboard";
        model.leaderboard = msg.entries;
        model.playerCount = msg.player_count;
        render();
        break;
      case "podium":
        model.phase = "podium";
        model.leaderboard = msg.entries;
        render();
        break;
      case "paused":
        model.paused = true;
        model.remaining = msg.remaining;
        model.deadline = null;
        render();
        break;
      case "resumed":
        model.paused = false;
        model.deadline = msg.deadline;
        model.serverNow = msg.server_now;
        model.remaining = msg.remaining;
        render();
        break;
      case "ended":
        model.phase = "ended";
        model.endedReason = msg.reason;
        conn.stop();
        render();
        break;
      case "error":
        if (model.awaitingWelcome && !refreshed && (msg.code === "token_expired" || msg.code === "token_invalid")) {
          // The stored key is stale: get a new one once, then try again.
          refreshed = true;
          fetchKey(gameId, call).then((key) => {
            stored = key;
            if (conn.socket) conn.socket.close(1000);
          }).catch((error) => say(error.message));
          return;
        }
        if (model.awaitingWelcome && HELLO_ERRORS.has(msg.code)) {
          conn.stop();
          replace(main,
            h("h1", {}, msg.code === "game_ended" ? "This game is over" : "The game service refused this screen"),
            h("p", {}, msg.message),
            h("p", {}, h("a", { href: `/host/games/${gameId}` }, "Results of this game"), " · ", h("a", { href: "/host" }, "Your quizzes")));
          return;
        }
        if (model.awaitingWelcome && RETRY_ERRORS.has(msg.code)) {
          // The game service could not reach its storage or the web service yet; try again.
          if (conn.socket) conn.socket.close(1000);
          return;
        }
        say(msg.message);
        break;
      default:
        break;
    }
  }

  conn = new GameConnection({
    url: stored.ws_url,
    hello: () => {
      model.awaitingWelcome = true;
      return { type: "host", host_token: stored.host_token };
    },
    onMessage: receive,
    onStatus: (state, detail = {}) => {
      if (state === "reconnecting") {
        connBar.className = "conn reconnecting";
        connBar.textContent = `Connection to the game service lost. Reconnecting…${detail.delay >= 1000 ? ` Next try in ${Math.round(detail.delay / 1000)} s.` : ""}`;
        connBar.hidden = false;
      } else {
        connBar.hidden = true;
        connBar.textContent = "";
      }
    },
  });
  replace(main, h("h1", {}, "Connecting to the game…"));
  conn.start();
  return () => {
    conn.stop();
    if (countdown) countdown.stop();
    connBar.hidden = true;
  };
}

