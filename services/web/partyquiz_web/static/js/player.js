// The player's phone page: join with a code and a nickname, then follow the game to the podium.
// Owns the player's session (resume token per game code in localStorage, device id), the final
// standing kept after the game, and drawing each phase so that every answer and the lock button
// fit the screen without scrolling. Rules, scores and time all come from the game service;
// nothing is decided here (nickname rules included: the server's message is shown as it is).

import { formatNumber, middle, orderingAnswer, showSliderValue, sliderAnswer, typedAnswer, TYPED_MAX } from "./answers.js";
import { api, ApiError } from "./api.js";
import { h, replace, announce, pts, ordinal, focusHeading } from "./dom.js";
import { GameConnection, Countdown, before, stepEndsIn } from "./gameclient.js";
import { socketUrl } from "./hostgame.js";
import { suggestNickname, graphemeCount } from "./nicknames.js";
import { shapeIcon, tintedShape } from "./shapes.js";
import { board, podium } from "./views.js";

const DEVICE_KEY = "partyquiz.device";
const NICKNAME_MAX = 20;
const KIND_HINT = {
  single: "Pick one answer.",
  multiple: "Pick every answer that is right, then lock it in.",
  true_false: "True or false?",
  poll: "Poll: there is no right answer and no points.",
  info: "",
  type_answer: "Type your answer, then send it.",
  slider: "Slide to your answer (or use − and +), then lock it in.",
  ordering: "Put them in order, first at the top: drag, or use ▲ ▼. Then lock it in.",
};
const PICKING = new Set(["single", "multiple", "true_false", "poll"]);
const POINTS_LABEL = { double: "Double points", none: "No points", standard: "" };
const JOIN_ERRORS = new Set([
  "invalid_join_code", "unknown_code", "too_many_attempts", "joining_locked", "banned",
  "game_full", "game_over", "invalid_nickname", "nickname_taken", "nickname_refused",
  "player_exists", "too_many_joins",
]);
const RESUME_ERRORS = new Set([
  "token_invalid", "token_expired", "unknown_game", "unknown_player", "banned",
]);
const JOIN_TEXT = {
  nickname_taken: "Someone in this game already has that nickname. Pick another one.",

  unknown_code: "No open game has this code. Check the big screen.",
  joining_locked: "The host has locked joining for this game.",
  banned: "The host removed you from this game; you cannot join it again.",
  game_full: "This game is full.",
  game_over: "This game is already over.",
  too_many_attempts: "Too many wrong codes. Wait a minute, then try again.",
  too_many_joins: "Many players are joining right now. Wait a few seconds, then press Join again.",
};
const ANSWER_ERRORS = {
  late: "Too late: time was up before your answer arrived.",
  not_open: "Answers are not open yet: read the question first.",
  duplicate: "You already answered this question; your first answer counts.",
  closed: "This question is closed.",
  paused: "The game is paused. Answer when it continues.",
  invalid_choice: "That answer is not allowed here.",
  wrong_question: "That question is no longer open.",
  rate_limited: "Slow down a little and try again.",
};

const main = document.getElementById("main");
const connBar = document.getElementById("conn");
const meBar = document.getElementById("me-bar");

const game = {
  code: null,
  lookup: null,
  session: null, // {game_id, player_id, nickname, resume_token, receipt, pending}
  joinNickname: null,
  conn: null,
  awaitingWelcome: false,
  phase: null,
  drawnKey: null,
  question: null,
  deadline: null,
  serverNow: null,
  remaining: null,
  paused: false,
  myAnswer: null,
  myText: null, // type answer: the text recorded
  myValue: null, // slider: the number recorded
  selected: new Set(),
  draft: { text: "", value: null, order: [] }, // what the player is putting together
  reveal: null,
  result: null,
  me: null,
  leaderboard: null,
  playerCount: 0,
  locked: false,
  endedReason: null,
  countdown: null,
};

// ---------------------------------------------------------------- storage

function deviceId() {
  let id = window.localStorage.getItem(DEVICE_KEY);
  if (!id) {
    // getRandomValues works on plain-http LAN addresses, where randomUUID does not exist.
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    id = `d-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
    window.localStorage.setItem(DEVICE_KEY, id);
  }
  return id;
}

const sessionKey = (code) => `partyquiz.player.${code}`;
const finalKey = (code) => `partyquiz.final.${code}`;

/** The player's final standing, kept after the game so a reload still shows it. */
function saveFinal() {
  if (!game.code || !game.session || !game.me || !game.me.rank) return;
  window.localStorage.setItem(finalKey(game.code), JSON.stringify({
    game_id: game.session.game_id, nickname: game.session.nickname, rank: game.me.rank,
    score: game.me.score || 0, players: game.playerCount, reason: game.endedReason,
    leaderboard: game.leaderboard || null, player_id: game.session.player_id,
  }));
}

function loadFinal(code) {
  try {
    return JSON.parse(window.localStorage.getItem(finalKey(code)) || "null");
  } catch {
    return null;
  }
}

function loadSession(code) {
  try {
    const raw = window.localStorage.getItem(sessionKey(code));
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function saveSession() {
  if (game.code && game.session) {
    window.localStorage.setItem(sessionKey(game.code), JSON.stringify(game.session));
  }
}

function clearSession() {
  if (game.code) window.localStorage.removeItem(sessionKey(game.code));
  game.session = null;
}

export function normalizeCode(text) {
  return String(text || "").replace(/[\s-]+/g, "").toUpperCase();
}

function codeFromUrl() {
  const match = /^\/join\/([^/]+)\/?$/.exec(window.location.pathname);
  if (match) return normalizeCode(decodeURIComponent(match[1]));
  return normalizeCode(new URLSearchParams(window.location.search).get("code"));
}

// ---------------------------------------------------------------- join

function lookupMessage(error) {
  if (error.status === 404) return "No open game has this code. Check the big screen.";
  if (error.status === 422) return "A game code is 6 letters and digits, as shown on the big screen.";
  if (error.status === 429) return "Too many tries. Wait a minute, then try again.";
  return error.message;
}

function drawJoin({ code = "", nickname = "", codeError = "", nicknameError = "", formError = "" } = {}) {
  game.phase = null;
  game.drawnKey = "join";
  meBar.hidden = true;
  document.title = "Join a game · PartyQuiz";
  const codeInput = h("input", {
    id: "join-code", name: "code", type: "text", class: "code-input", value: code,
    autocomplete: "off", autocapitalize: "characters", spellcheck: "false", maxlength: "12",
    required: true, "aria-describedby": "join-code-error", "aria-invalid": codeError ? "true" : "false",
  });
  // No maxlength: it would cut a long name (or a joined emoji) without a word; the length is
  // checked below, in characters as people count them, and the server has the last word.
  const nickInput = h("input", {
    id: "join-nickname", name: "nickname", type: "text", value: nickname,
    autocomplete: "nickname", required: true, "aria-describedby": "join-nickname-hint join-nickname-error",
    "aria-invalid": nicknameError ? "true" : "false",
  });
  const spin = h("button", {
    type: "button", class: "secondary", id: "suggest-nickname",
    onclick: () => spinNickname(nickInput, spin),
  }, "🎲 Suggest a name");
  const button = h("button", { type: "submit", class: "big" }, "Join");
  const form = h("form", { class: "card", novalidate: true },
    h("label", { for: "join-code" }, "Game code"),
    codeInput,
    h("p", { class: "field-error", id: "join-code-error" }, codeError),
    h("label", { for: "join-nickname" }, "Your nickname"),
    h("p", { class: "hint", id: "join-nickname-hint" }, `Up to ${NICKNAME_MAX} characters; everyone sees it.`),
    h("div", { class: "nick-row" }, nickInput, spin),
    h("p", { class: "field-error", id: "join-nickname-error" }, nicknameError),
    h("p", { class: "form-error", id: "join-error", role: "alert" }, formError),
    h("div", { class: "actions" }, button),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const enteredCode = normalizeCode(codeInput.value);
    const enteredNick = nickInput.value.trim();
    if (!enteredCode) {
      drawJoin({ code: codeInput.value, nickname: nickInput.value, codeError: "Enter the game code from the big screen." });
      document.getElementById("join-code").focus();
      return;
    }
    if (!enteredNick) {
      drawJoin({ code: enteredCode, nickname: "", nicknameError: "Choose a nickname, or press “Suggest a name”." });
      document.getElementById("join-nickname").focus();
      return;
    }
    const length = graphemeCount(enteredNick);
    if (length > NICKNAME_MAX) {
      drawJoin({ code: enteredCode, nickname: nickInput.value, nicknameError: `That nickname is ${length} characters long; the limit is ${NICKNAME_MAX}. Shorten it a little.` });
      document.getElementById("join-nickname").focus();
      return;
    }
    button.disabled = true;
    button.textContent = "Joining…";
    await startJoin(enteredCode, enteredNick);
  });
  replace(main, h("h1", {}, "Join a game"), form);
  if (codeError) codeInput.focus();
  else if (nicknameError) nickInput.focus();
  else if (code) nickInput.focus();
  else codeInput.focus();
}

async function findGame(code) {
  const lookup = await api(`/api/games/code/${encodeURIComponent(code)}`);
  if (lookup.status === "ended") {
    throw new ApiError(410, { code: "game_over", message: "This game has ended." });
  }
  return lookup;
}

/** Spin a few suggestions past, then settle on one (at once when motion is reduced). */
function spinNickname(input, button) {
  const reduced = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  let left = reduced ? 1 : 6;
  button.disabled = true;
  const turn = () => {
    input.value = suggestNickname(input.value);
    left -= 1;
    if (left > 0) window.setTimeout(turn, 70);
    else {
      button.disabled = false;
      input.setAttribute("aria-invalid", "false");
      announce(`Suggested nickname: ${input.value}`);
    }
  };
  turn();
}

async function startJoin(code, nickname) {
  const stored = loadSession(code);
  if (stored && stored.resume_token && stored.nickname && stored.nickname.toLocaleLowerCase() === nickname.toLocaleLowerCase()) {
    // This phone was already in this game under that name: come back with the score.
    await startResume(code, stored);
    return;
  }
  let lookup;
  try {
    lookup = await findGame(code);
  } catch (error) {
    const message = error instanceof ApiError ? lookupMessage(error) : String(error);
    if (error.status === 0 || error.status === 429) drawJoin({ code, nickname, formError: message });
    else drawJoin({ code, nickname, codeError: message });
    return;
  }
  if (game.code !== code) {
    game.code = code;
    window.history.replaceState(null, "", `/join/${code}`);
  }
  game.lookup = lookup;
  game.joinNickname = nickname;
  game.session = null;
  connect();
}

async function startResume(code, stored) {
  game.code = code;
  drawWaiting("Rejoining your game…");
  let lookup;
  try {
    lookup = await findGame(code);
  } catch (error) {
    if (error.status === 0) {
      // Offline right after a reload: keep the session and try again shortly.
      showConn("reconnecting", "Connection lost. Reconnecting…");
      window.setTimeout(() => startResume(code, stored), 2000);
      return;
    }
    clearSession();
    const final = loadFinal(code);
    if (final && (error.status === 404 || error.status === 410)) {
      drawFinal(final);
      return;
    }
    drawJoin({ code, formError: error instanceof ApiError && error.status !== 404 && error.status !== 410 ? lookupMessage(error) : "That game is over. Join a new one with its code." });
    return;
  }
  if (lookup.game_id !== stored.game_id) {
    clearSession();
    drawJoin({ code });
    return;
  }
  game.lookup = lookup;
  game.session = stored;
  connect();
}

function connect() {
  if (game.conn) game.conn.stop();
  game.conn = new GameConnection({
    url: socketUrl(game.lookup.ws_url),
    hello: () => {
      game.awaitingWelcome = true;
      if (game.session && game.session.resume_token) {
        return { type: "resume", resume_token: game.session.resume_token };
      }
      return { type: "join", code: game.code, nickname: game.joinNickname, device_id: deviceId() };
    },
    onMessage: receive,
    onStatus: connectionStatus,
  });
  game.conn.start();
}

// ---------------------------------------------------------------- connection state

function showConn(kind, text) {
  connBar.className = `conn ${kind}`;
  connBar.textContent = text;
  connBar.hidden = !text;
}

function connectionStatus(status, detail = {}) {
  if (status === "reconnecting") {
    const wait = detail.delay >= 1000 ? ` Next try in ${Math.round(detail.delay / 1000)} s.` : "";
    showConn("reconnecting", `Connection lost. Reconnecting…${wait}`);
    announce("Connection lost. Reconnecting.");
  } else if (status === "connected") {
    if (!connBar.hidden) announce("Reconnected.");
    showConn("", "");
  } else if (status === "stopped") {
    showConn("", "");
  }
}

// ---------------------------------------------------------------- messages

function receive(msg) {
  switch (msg.type) {
    case "welcome":
      onWelcome(msg);
      break;
    case "state":
      applySnapshot(msg.state);
      break;
    case "lobby":
      game.playerCount = msg.player_count;
      game.locked = msg.joining_locked;
      if (game.phase === "lobby") drawLobby();
      break;
    case "question":
      openQuestion(msg, msg.deadline, msg.server_now, null, false, null, msg);
      break;
    case "answer_receipt":
      onReceipt(msg);
      break;
    case "reveal":
      game.phase = "reveal";
      game.reveal = msg;
      game.playerCount = msg.total;
      game.result = null;
      if (game.countdown) game.countdown.stop();
      render();
      break;
    case "personal_result":
      game.result = msg.result;
      updateMe({ score: msg.result.score, rank: msg.result.rank, streak: msg.result.streak });
      render(true);
      announceResult();
      break;
    case "leaderboard":
      game.phase = "leaderboard";
      game.leaderboard = msg.entries;
      game.playerCount = msg.player_count;
      render();
      break;
    case "podium":
      game.phase = "podium";
      game.leaderboard = msg.entries;
      game.playerCount = msg.player_count;
      render();
      saveFinal();
      break;
    case "paused":
      game.paused = true;
      game.remaining = msg.remaining;
      if (game.phase === "question") render(true);
      announce("The game is paused.");
      break;
    case "resumed":
      game.paused = false;
      game.deadline = msg.deadline;
      game.opensAt = msg.deadline - (game.question ? game.question.time_limit : 0);
      game.showsAt = null;
      game.serverNow = msg.server_now;
      if (game.phase === "question") render(true);
      announce("The game continues.");
      break;
    case "kicked":
      clearSession();
      game.conn.stop();
      game.phase = "kicked";
      render();
      break;
    case "ended":
      game.phase = "ended";
      game.endedReason = msg.reason;
      finish();
      render();
      break;
    case "host_status":
      showHostStatus(msg.connected);
      break;
    case "error":
      onError(msg);
      break;
    default:
      break;
  }
}

/** Tell players when the host's screen dropped (the game waits for it) and when it is back. */
function showHostStatus(connected) {
  const was = game.hostConnected !== false;
  game.hostConnected = connected;
  const bar = document.getElementById("host-status");
  bar.hidden = connected;
  bar.textContent = connected ? "" : "The host's screen lost its connection. Stay here: the game goes on when it is back.";
  if (was && !connected) announce(bar.textContent, { assertive: true });
  else if (!was && connected) announce("The host is back.");
}

function onWelcome(msg) {
  game.awaitingWelcome = false;
  const previous = game.session || {};
  game.session = {
    game_id: msg.state.game_id,
    player_id: msg.player_id,
    nickname: msg.nickname,
    resume_token: msg.resume_token,
    receipt: previous.player_id === msg.player_id ? previous.receipt || null : null,
    pending: previous.player_id === msg.player_id ? previous.pending || null : null,
  };
  saveSession();
  applySnapshot(msg.state);
  const pending = game.session && game.session.pending;
  if (pending && game.phase === "question" && game.question && pending.index === game.question.index
      && !game.myAnswer && !game.paused) {
    // The answer went out just before the drop and was never receipted: send it again.
    game.conn.send(answerMessage(pending));
  } else if (pending && !(game.question && pending.index === game.question.index && game.myAnswer)) {
    // The connection came back after that question closed: the answer never counted. Say so.
    game.session.pending = null;
    saveSession();
    game.lostAnswer = pending.index;
    render(true);
    announce(`Your answer to question ${pending.index + 1} did not reach the game before time was up, so it did not count.`, { assertive: true });
  }
}

function applySnapshot(s) {
  showHostStatus(s.host_connected !== false || s.phase === "ended");
  game.playerCount = s.player_count;
  game.locked = s.joining_locked;
  game.me = s.me || game.me;
  updateMe(game.me || {});
  game.leaderboard = s.leaderboard;
  game.endedReason = s.ended_reason;
  if (s.phase === "question" && s.question) {
    openQuestion(s.question, s.deadline, s.server_now, s.remaining, s.paused, s.my_answer, s);
    return;
  }
  game.phase = s.phase;
  game.question = s.question;
  game.reveal = s.reveal;
  game.result = s.my_result;
  game.myAnswer = s.my_answer;
  game.myText = s.my_answer_text ?? null;
  game.myValue = s.my_answer_value ?? null;
  if (game.countdown) game.countdown.stop();
  if (s.phase === "ended") finish();
  render();
}

function openQuestion(q, deadline, serverNow, remaining, paused, myAnswer = null, times = {}) {
  const isNew = !game.question || game.question.index !== q.index || game.phase !== "question";
  game.phase = "question";
  game.question = q;
  game.deadline = deadline;
  game.opensAt = times.opens_at ?? (deadline ? deadline - q.time_limit : null);
  game.showsAt = times.shows_at ?? null;
  game.serverNow = serverNow;
  game.remaining = remaining;
  game.paused = Boolean(paused);
  game.myAnswer = myAnswer;
  if (times.my_answer_text !== undefined || isNew) game.myText = times.my_answer_text ?? null;
  if (times.my_answer_value !== undefined || isNew) game.myValue = times.my_answer_value ?? null;
  game.reveal = null;
  game.result = null;
  if (isNew) {
    game.selected = new Set(myAnswer || []);
    game.draft = {
      text: "",
      value: q.slider ? middle(q.slider) : null,
      order: q.kind === "ordering" && myAnswer ? [...myAnswer] : q.choices.map((_, i) => i),
    };
  }
  if (isNew && game.lostAnswer !== null && game.lostAnswer !== undefined && q.index > game.lostAnswer) game.lostAnswer = null;
  render();
  if (isNew) {
    const hint = POINTS_LABEL[q.points] ? ` ${POINTS_LABEL[q.points]}.` : "";
    announce(`Question ${q.index + 1} of ${q.total}: ${q.text}.${hint}`);
  }
}

function onReceipt(msg) {
  game.myAnswer = msg.choices;
  game.myText = msg.text ?? null;
  game.myValue = msg.value ?? null;
  if (game.session) {
    game.session.receipt = { index: msg.question_index, elapsed: msg.elapsed };
    game.session.pending = null;
    saveSession();
  }
  if (game.phase === "question") drawAnswerState();
  announce(`Answer locked at ${formatSeconds(msg.elapsed)} seconds.`);
}

function onError(msg) {
  if (game.awaitingWelcome && (JOIN_ERRORS.has(msg.code) || RESUME_ERRORS.has(msg.code))) {
    game.awaitingWelcome = false;
    game.conn.stop();
    const resuming = Boolean(game.session && game.session.resume_token);
    if (resuming) {
      clearSession();
      const text = msg.code === "banned"
        ? "The host removed you from this game."
        : "Your place in that game could not be restored. Join again with a nickname.";
      drawJoin({ code: game.code, formError: text });
      return;
    }
    const nicknameProblem = ["invalid_nickname", "nickname_taken", "nickname_refused"].includes(msg.code);
    const text = JOIN_TEXT[msg.code] || msg.message;
    drawJoin({
      code: game.code,
      nickname: game.joinNickname || "",
      nicknameError: nicknameProblem ? text : "",
      formError: nicknameProblem ? "" : text,
    });
    return;
  }
  if (msg.code in ANSWER_ERRORS) {
    const wasOffline = Boolean(game.session && game.session.pending && game.session.pending.offline);
    if (game.session) {
      game.session.pending = null;
      saveSession();
    }
    const box = document.getElementById("answer-error");
    const lostOffline = msg.code === "late" && wasOffline;
    // Kept beyond this question: the reveal that follows says it again.
    if (lostOffline && game.question) game.lostAnswer = game.question.index;
    const text = lostOffline
      ? "Your answer was sent when the connection came back, after time was up, so it did not count."
      : ANSWER_ERRORS[msg.code];
    if (box) box.textContent = text;
    announce(text, { assertive: true });
    // The question may have closed before the refusal came (the reveal is drawn): redraw it
    // with the note, so the screen says what happened and not only the announcement.
    if (lostOffline && game.phase !== "question") render(true);
    if (msg.code !== "duplicate" && game.phase === "question" && !game.myAnswer) {
      // Picks start over; a typed text, a slider or an order stays, to be fixed and sent again.
      game.selected = new Set();
      drawAnswerState();
    }
    return;
  }
  if (msg.code === "unavailable" || msg.code === "internal") {
    announce("The game service had a problem. Trying again.", { assertive: true });
  }
}

function finish() {
  saveFinal();
  clearSession();
  if (game.conn) game.conn.stop();
}

// ---------------------------------------------------------------- drawing

function updateMe(standing) {
  if (!game.session) return;
  game.me = { ...(game.me || {}), ...standing };
  meBar.hidden = false;
  document.getElementById("me-name").textContent = game.session.nickname;
  document.getElementById("me-score").textContent = pts(game.me.score || 0);
  // A rank means something once the first question has been scored.
  const scored = game.me.score > 0 || ["reveal", "leaderboard", "podium", "ended"].includes(game.phase);
  const ranked = Boolean(game.me.rank) && scored;
  document.getElementById("me-rank").textContent = ranked ? ` · ${ordinal(game.me.rank)}` : "";
}

function render(samePhase = false) {
  if (game.me) updateMe({});
  const now = serverClock(); // one reading for the step and its end (see stepEndsIn)
  const step = game.phase === "question" ? questionStep(now) : "";
  const key = `${game.phase}:${game.question ? game.question.index : ""}:${step}`;
  const fresh = key !== game.drawnKey;
  game.drawnKey = key;
  document.body.classList.toggle("in-game", Boolean(game.phase));
  document.body.classList.toggle("answering", game.phase === "question" && step === "answer");
  window.clearTimeout(game.stepTimer);
  switch (game.phase) {
    case "lobby": drawLobby(); break;
    case "question":
      if (step === "answer") {
        if (fresh || !document.getElementById("choices")) drawQuestion();
        else drawPauseState();
      } else drawUpcoming(step);
      scheduleStep(step, now);
      break;
    case "reveal": drawReveal(); break;
    case "leaderboard": drawLeaderboard(); break;
    case "podium": drawPodium(); break;
    case "ended": drawEnded(); break;
    case "kicked": drawKicked(); break;
    default: break;
  }
  if (fresh && !samePhase && game.phase !== "question") focusHeading(main);
}

function drawWaiting(text) {
  game.drawnKey = "waiting";
  replace(main, h("h1", {}, text));
}

function drawLobby() {
  document.title = "Waiting to start · PartyQuiz";
  replace(main,
    h("h1", {}, "You're in!"),
    h("p", { class: "card center" },
      h("span", { class: "visually-hidden" }, "Your nickname: "),
      h("strong", { style: "font-size:1.6rem", "data-testid": "lobby-nickname" }, game.session ? game.session.nickname : ""),
    ),
    h("p", {}, "Look at the big screen. The game starts when the host is ready."),
    h("p", {}, "Your name is on the big screen now."),
    game.locked ? h("p", { class: "notice" }, "The host has locked joining; you are in.") : null,
  );
}

/** Where in a question the game is: "ready", "read" or "answer" (on the server's clock). */
function serverClock() {
  return game.conn ? game.conn.serverNow() : Date.now() / 1000;
}

function questionStep(now) {
  const q = game.question;
  if (!q) return "answer";
  if (game.paused) return (game.remaining ?? 0) > q.time_limit ? "read" : "answer";
  if (game.opensAt === null || game.opensAt === undefined) return "answer";
  if (before(game.showsAt, game.serverNow, now)) return "ready";
  return before(game.opensAt, game.serverNow, now) ? "read" : "answer";
}

/** Draw again when the step drawn at `now` ends. */
function scheduleStep(step, now) {
  if (game.phase !== "question" || game.paused) return;
  const wait = stepEndsIn(step, game, now);
  if (wait !== null) game.stepTimer = window.setTimeout(() => render(true), wait);
}

/** Before answers open: "get ready" (first question), then the question to read. */
function drawUpcoming(step) {
  const q = game.question;
  document.title = step === "ready" ? "Get ready · PartyQuiz" : `Question ${q.index + 1} · PartyQuiz`;
  const countEl = h("span", { class: "big-count", "aria-hidden": "true" });
  const fillEl = h("div", { class: "timer-fill" });
  const until = step === "ready" ? game.showsAt : game.opensAt;
  const total = step === "ready" ? Math.max(1, game.showsAt - (game.serverNow || game.showsAt)) : Math.max(1, game.opensAt - (game.showsAt || game.serverNow || game.opensAt));
  replace(main,
    h("p", { class: "q-meta" }, h("span", {}, `Question ${q.index + 1} of ${q.total}`),
      POINTS_LABEL[q.points] ? h("span", { class: "notice" }, POINTS_LABEL[q.points]) : null),
    step === "ready"
      ? h("h1", { class: "upcoming-title" }, "Get ready!")
      : h("h1", { class: "q-text", id: "q-text" }, q.text),
    step === "ready" ? null : picture(q),
    h("p", { class: "upcoming", id: "upcoming" }, step === "ready" ? "The first question comes in " : "Answers open in ", countEl),
    h("div", { class: "timer-track", "aria-hidden": "true" }, fillEl),
    game.paused ? h("p", { class: "notice", id: "paused-note" }, "Paused by the host.") : null,
    lostAnswerNote());
  if (game.countdown) game.countdown.stop();
  game.countdown = new Countdown(countEl, fillEl);
  if (game.paused) game.countdown.freeze((game.remaining ?? 0) - q.time_limit, total);
  else game.countdown.run(until, serverClock(), total);
}

function lostAnswerNote() {
  if (game.lostAnswer === null || game.lostAnswer === undefined) return null;
  return h("p", { class: "notice", id: "lost-answer", role: "alert" }, `Your answer to question ${game.lostAnswer + 1} did not reach the game before time was up, so it did not count.`);
}

function choiceButtons(q) {
  const multiple = q.kind === "multiple";
  const list = h("ul", { class: `choices n${q.choices.length}`, id: "choices", "aria-label": "Answers" });
  q.choices.forEach((text, i) => {
    const button = h("button", {
      type: "button",
      class: `choice choice-${i}${text.length > 40 ? " long" : ""}`,
      "aria-pressed": "false",
      "aria-keyshortcuts": String(i + 1),
      dataset: { index: String(i) },
      onclick: () => pick(i),
    }, shapeIcon(i), h("span", { class: "text" }, text), h("span", { class: "key", "aria-hidden": "true" }, String(i + 1)));
    if (multiple) button.setAttribute("aria-describedby", "kind-hint");
    list.append(h("li", {}, button));
  });
  return list;
}

/** The question's picture: sent to phones only when the quiz shows pictures there. */
function picture(q) {
  return q.image ? h("img", { class: "q-picture", id: "q-picture", src: q.image, alt: "", "data-testid": "q-picture" }) : null;
}

function drawInfoSlide() {
  const q = game.question;
  document.title = "Look at the big screen · PartyQuiz";
  replace(main,
    h("p", { class: "q-meta" }, h("span", {}, "Look at the big screen")),
    h("h1", { class: "q-text", id: "q-text" }, q.text),
    picture(q),
    h("p", {}, "Nothing to answer here: the next question comes soon."));
}

function drawQuestion() {
  const q = game.question;
  if (q.kind === "info") {
    drawInfoSlide();
    return;
  }
  document.title = `Question ${q.index + 1} · PartyQuiz`;
  const countEl = h("span", { class: "timer-count", "aria-hidden": "true" });
  const fillEl = h("div", { class: "timer-fill" });
  const timer = h("div", { class: "timer", id: "timer" },
    countEl, h("div", { class: "timer-track", "aria-hidden": "true" }, fillEl),
    h("span", { class: "visually-hidden", id: "timer-text" }, ""));
  const points = POINTS_LABEL[q.points];
  // The phone does not repeat the question at length (it is on the big screen): the answers
  // and the lock button come first and always fit the screen.
  replace(main,
    h("div", { class: "q-bar" },
      h("span", { class: "q-number" }, `${q.index + 1}/${q.total}`),
      points ? h("span", { class: "badge" }, points) : null,
      timer),
    h("h1", { class: "q-text compact", id: "q-text" }, q.text),
    picture(q),
    h("p", { class: "hint kind-hint", id: "kind-hint" }, `${KIND_HINT[q.kind] || ""}`,
      PICKING.has(q.kind) ? h("span", { class: "keys-hint" }, ` Keys 1–${q.choices.length} answer; arrow keys move.`) : null,
      q.kind === "ordering" ? h("span", { class: "keys-hint" }, " Arrow keys move the item in focus.") : null),
    lostAnswerNote(),
    answerInput(q),
    q.kind === "multiple" || q.kind === "slider" || q.kind === "ordering"
      ? h("button", { type: "button", class: "big lock-in", id: "lock-in", onclick: lockIn }, q.kind === "ordering" ? "Lock in my order" : "Lock in my answer")
      : null,
    h("p", { class: "receipt", id: "receipt", "data-testid": "receipt" }),
    h("p", { class: "form-error answer-error", id: "answer-error" }),
  );
  if (game.countdown) game.countdown.stop();
  game.countdown = new Countdown(countEl, fillEl, (seconds) => {
    document.getElementById("timer-text").textContent = `${seconds} seconds left`;
    if (seconds === 5 && !game.myAnswer) announce("5 seconds left.");
    if (seconds === 0 && !game.myAnswer) {
      const receipt = document.getElementById("receipt");
      if (receipt && !receipt.textContent) drawAnswerState();
    }
  });
  drawPauseState();
  drawAnswerState();
  const first = main.querySelector(".choice:not(:disabled), #typed-answer:not(:disabled), #slider-input:not(:disabled), .order-item");
  (first || main.querySelector("h1")).focus({ preventScroll: true });
}

function drawPauseState() {
  const q = game.question;
  const timer = document.getElementById("timer");
  if (!timer || !game.countdown) return;
  timer.classList.toggle("paused", game.paused);
  if (game.paused) game.countdown.freeze(Math.min(game.remaining ?? 0, q.time_limit), q.time_limit);
  else if (game.deadline !== null && game.deadline !== undefined) game.countdown.run(game.deadline, game.serverNow, q.time_limit);
  else game.countdown.freeze(game.remaining ?? 0, q.time_limit);
  const existing = document.getElementById("paused-note");
  if (game.paused && !existing) {
    timer.after(h("p", { class: "notice", id: "paused-note" }, "Paused by the host."));
  } else if (!game.paused && existing) existing.remove();
  drawAnswerState();
}

function timeIsUp() {
  return !game.paused && game.countdown && game.countdown.remaining() <= 0;
}

/** The answer input of question `q`: choice buttons, a text field, a slider or a list. */
function answerInput(q) {
  if (q.kind === "type_answer") {
    return typedAnswer({
      text: game.draft.text,
      onInput: (text) => {
        game.draft.text = text;
        const lockIn = document.getElementById("lock-in");
        if (lockIn) lockIn.disabled = !canSend() || !text.trim();
      },
      onSubmit: (text) => {
        if (text.trim().length > TYPED_MAX) return;
        submit({ text: text.trim() });
      },
    });
  }
  if (q.kind === "slider") {
    return sliderAnswer(q.slider, {
      value: game.draft.value,
      onChange: (value) => {
        if (!canSend()) return;
        game.draft.value = value;
        showSliderValue(q.slider, value);
      },
    });
  }
  if (q.kind === "ordering") {
    return orderingAnswer(q.choices, game.draft.order, {
      onChange: (order) => { game.draft.order = order; },
    });
  }
  return choiceButtons(q);
}

function pendingHere() {
  const pending = game.session && game.session.pending;
  return pending && game.question && pending.index === game.question.index ? pending : null;
}

/** Whether the player can still change and send an answer to the open question. */
function canSend() {
  return !Array.isArray(game.myAnswer) && !pendingHere() && !game.paused && !timeIsUp();
}

function drawAnswerState() {
  const q = game.question;
  if (!q) return;
  if (!PICKING.has(q.kind)) {
    drawInputState(q);
    return;
  }
  const list = document.getElementById("choices");
  if (!list) return;
  const answered = Array.isArray(game.myAnswer);
  const pending = pendingHere();
  const chosen = answered ? new Set(game.myAnswer) : pending ? new Set(pending.choices) : game.selected;
  const locked = answered || pending || game.paused || timeIsUp();
  list.classList.toggle("locked", Boolean(answered || pending));
  for (const button of list.querySelectorAll(".choice")) {
    const i = Number(button.dataset.index);
    button.setAttribute("aria-pressed", chosen.has(i) ? "true" : "false");
    button.disabled = Boolean(locked);
  }
  const lockIn = document.getElementById("lock-in");
  if (lockIn) lockIn.disabled = Boolean(locked) || game.selected.size === 0;
  drawReceipt(answered, pending);
}

/** A text field, slider or list shows what was sent (or is being sent) and locks after it. */
function drawInputState(q) {
  const answered = Array.isArray(game.myAnswer);
  const pending = pendingHere();
  const locked = !canSend();
  const lockIn = document.getElementById("lock-in");
  if (q.kind === "type_answer") {
    const input = document.getElementById("typed-answer");
    if (!input) return;
    const shown = answered ? game.myText : pending ? pending.text : null;
    if (shown !== null && shown !== undefined) input.value = shown;
    input.disabled = locked;
    if (lockIn) lockIn.disabled = locked || !input.value.trim();
  } else if (q.kind === "slider") {
    const value = answered ? game.myValue : pending ? pending.value : game.draft.value;
    if (value !== null && value !== undefined) showSliderValue(q.slider, value);
    for (const id of ["slider-input", "slider-less", "slider-more"]) {
      const el = document.getElementById(id);
      if (el) el.disabled = locked;
    }
    document.getElementById("slider")?.classList.toggle("locked", Boolean(answered || pending));
    if (lockIn) lockIn.disabled = locked;
  } else if (q.kind === "ordering") {
    const list = document.getElementById("order");
    if (!list) return;
    const order = answered ? game.myAnswer : pending ? pending.choices : game.draft.order;
    if (order && order.length === q.choices.length) list.showOrder(order);
    list.setLocked(locked);
    if (lockIn) lockIn.disabled = locked;
  }
  drawReceipt(answered, pending);
}

function drawReceipt(answered, pending) {
  const receipt = document.getElementById("receipt");
  if (!receipt) return;
  if (answered) {
    const r = game.session && game.session.receipt;
    receipt.textContent = r && r.index === game.question.index
      ? `Answer locked at ${formatSeconds(r.elapsed)} s`
      : "Answer locked";
  } else if (pending) {
    receipt.textContent = "Sending your answer…";
  } else if (timeIsUp()) {
    receipt.textContent = "Time's up!";
  } else {
    receipt.textContent = "";
  }
}

function pick(i) {
  const q = game.question;
  if (!q || game.phase !== "question" || game.myAnswer || game.paused) return;
  if (q.kind === "multiple") {
    if (game.selected.has(i)) game.selected.delete(i);
    else game.selected.add(i);
    drawAnswerState();
    return;
  }
  submit({ choices: [i] });
}

function lockMultiple() {
  if (game.selected.size) submit({ choices: [...game.selected].sort((a, b) => a - b) });
}

/** The lock button: the picks of a multiple-choice question, the slider's number, the order. */
function lockIn() {
  const q = game.question;
  if (!q) return;
  if (q.kind === "slider") submit({ value: game.draft.value });
  else if (q.kind === "ordering") submit({ choices: [...game.draft.order] });
  else lockMultiple();
}

/** The answer message for a pending answer: `choices`, a `text` or a `value`. */
function answerMessage(pending) {
  const message = { type: "answer", question_index: pending.index };
  if (pending.text !== undefined) message.text = pending.text;
  else if (pending.value !== undefined) message.value = pending.value;
  else message.choices = pending.choices;
  return message;
}

function submit(answer) {
  const q = game.question;
  if (!game.session || pendingHere()) return;
  if (answer.choices && PICKING.has(q.kind)) game.selected = new Set(answer.choices);
  game.session.pending = { index: q.index, ...answer };
  saveSession();
  document.getElementById("answer-error").textContent = "";
  const sent = game.conn.send(answerMessage(game.session.pending));
  drawAnswerState();
  if (!sent) {
    game.session.pending.offline = true;
    saveSession();
    document.getElementById("receipt").textContent = "Offline: your answer is sent as soon as the connection is back.";
  }
}

function formatSeconds(s) {
  return Number(s).toFixed(1);
}

function choiceLabel(i) {
  const q = game.question;
  return h("span", { class: "choice-inline" }, tintedShape(i), ` ${q ? q.choices[i] : `Answer ${i + 1}`}`);
}

function drawReveal() {
  const q = game.question;
  const r = game.result;
  const poll = q && q.kind === "poll";
  let kind;
  let headline;
  if (!r) { kind = "poll"; headline = "Time's up!"; }
  else if (!r.answered) { kind = "missed"; headline = "No answer"; }
  else if (poll || r.correct === null) { kind = "poll"; headline = "Thanks for voting"; }
  else if (r.correct) { kind = "correct"; headline = "Correct!"; }
  else if (r.points > 0) { kind = "correct"; headline = q && q.kind === "slider" ? "Close!" : "Partly right"; }
  else { kind = "wrong"; headline = "Not quite"; }
  document.title = `${headline} · PartyQuiz`;
  const correct = game.reveal ? game.reveal.correct : [];
  const mine = game.myAnswer || [];
  const picking = !q || PICKING.has(q.kind);
  replace(main,
    lostAnswerNote(),
    q ? h("p", { class: "q-meta" }, h("span", {}, `Question ${q.index + 1} of ${q.total}`)) : null,
    h("div", { class: `result ${kind}`, "data-testid": "result" },
      h("h1", { class: "headline" }, headline),
      r ? h("p", { class: "points" }, `+${pts(r.points)} points`) : h("p", {}, "Waiting for your result…")),
    r ? h("div", { class: "stats" },
      h("div", { class: "stat" }, "Score", h("b", { "data-testid": "result-score" }, pts(r.score))),
      h("div", { class: "stat" }, "Rank", h("b", { "data-testid": "result-rank" }, ordinal(r.rank))),
      h("div", { class: "stat" }, "Streak", h("b", {}, String(r.streak))),
      h("div", { class: "stat" }, "Players", h("b", {}, String(game.playerCount)))) : null,
    picking && q && !poll && correct.length ? h("div", { class: "card" },
      h("h2", {}, correct.length > 1 ? "Right answers" : "Right answer"),
      h("ul", { class: "plain" }, correct.map((i) => h("li", {}, choiceLabel(i))))) : null,
    picking && q && mine.length ? h("div", { class: "card" },
      h("h2", {}, "Your answer"),
      h("ul", { class: "plain" }, mine.map((i) => h("li", {}, choiceLabel(i))))) : null,
    picking || !q ? null : revealOfInput(q, game.reveal, r));
}

/** What was right and what the player gave, for a type-answer, slider or ordering question. */
function revealOfInput(q, reveal, result) {
  const answered = result ? result.answered : Array.isArray(game.myAnswer);
  const card = (title, testId, ...content) => h("div", { class: "card", "data-testid": testId }, h("h2", {}, title), ...content);
  if (q.kind === "type_answer") {
    const accepted = (reveal && reveal.accepted) || [];
    return [
      accepted.length ? card(accepted.length > 1 ? "Right answers" : "Right answer", "right-answer",
        h("ul", { class: "plain" }, accepted.map((text) => h("li", { class: "typed-text" }, text)))) : null,
      answered && game.myText !== null ? card("Your answer", "your-answer", h("p", { class: "typed-text" }, game.myText)) : null,
    ];
  }
  if (q.kind === "slider") {
    const right = reveal && reveal.correct_value !== undefined && reveal.correct_value !== null
      ? `${formatNumber(reveal.correct_value, q.slider)}${reveal.tolerance ? ` (± ${formatNumber(reveal.tolerance, { ...q.slider, unit: "" })} counts as right)` : ""}`
      : null;
    return [
      right ? card("Right answer", "right-answer", h("p", { class: "big-number" }, right)) : null,
      answered && game.myValue !== null ? card("Your answer", "your-answer", h("p", { class: "big-number" }, formatNumber(game.myValue, q.slider))) : null,
    ];
  }
  const orderOf = (order) => h("ol", { class: "plain numbered" }, order.map((i) => h("li", {}, choiceLabel(i))));
  return [
    reveal && reveal.correct.length ? card("Right order", "right-answer", orderOf(reveal.correct)) : null,
    answered && game.myAnswer && game.myAnswer.length ? card("Your order", "your-answer", orderOf(game.myAnswer)) : null,
  ];
}

function announceResult() {
  const r = game.result;
  if (!r) return;
  if (!r.answered) announce(`No answer. Your score is ${r.score}, rank ${r.rank}.`);
  else if (r.correct === null) announce(`Vote counted. Your score is ${r.score}, rank ${r.rank}.`);
  else announce(`${r.correct ? "Correct" : "Not correct"}. ${r.points} points. Score ${r.score}, rank ${r.rank}.`);
}

function myBoard(entries) {
  return board(entries, game.session ? game.session.player_id : null);
}

function syncMeFromEntries(entries) {
  const me = game.session ? game.session.player_id : null;
  const mine = (entries || []).find((e) => e.player_id === me);
  if (mine) updateMe({ score: mine.score, rank: mine.rank, streak: mine.streak });
}

function drawLeaderboard() {
  document.title = "Leaderboard · PartyQuiz";
  syncMeFromEntries(game.leaderboard);
  const me = game.me || {};
  replace(main,
    lostAnswerNote(),
    h("h1", {}, "Leaderboard"),
    me.rank ? h("p", { class: "card center" }, `You are ${ordinal(me.rank)} of ${game.playerCount} with ${pts(me.score)} points.`) : null,
    myBoard(game.leaderboard),
  );
}

function drawPodium() {
  document.title = "Podium · PartyQuiz";
  syncMeFromEntries(game.leaderboard);
  const me = game.me || {};
  replace(main,
    h("h1", {}, "Podium"),
    podium(game.leaderboard),
    me.rank ? h("p", { class: "card center", "data-testid": "final-standing" }, `You finished ${ordinal(me.rank)} with ${pts(me.score)} points.`) : null,
  );
}

function drawEnded() {
  document.title = "Game over · PartyQuiz";
  if (game.leaderboard) syncMeFromEntries(game.leaderboard);
  const me = game.me || {};
  replace(main,
    h("h1", {}, "Game over"),
    h("p", {}, game.endedReason === "ended_by_host" ? "The host ended the game." : "Thanks for playing!"),
    me.rank ? h("p", { class: "card center", "data-testid": "final-standing" }, `You finished ${ordinal(me.rank)} with ${pts(me.score)} points.`) : null,
    game.leaderboard ? myBoard(game.leaderboard) : null,
    h("p", {}, h("a", { href: "/" }, "Join another game")),
  );
}

/** The final standing kept on this phone, after the game is gone from the server. */
function drawFinal(final) {
  document.title = "Game over · PartyQuiz";
  game.phase = null;
  game.drawnKey = "final";
  meBar.hidden = true;
  replace(main,
    h("h1", {}, "Game over"),
    h("p", { class: "card center", "data-testid": "final-standing" },
      `${final.nickname}, you finished ${ordinal(final.rank)}${final.players ? ` of ${final.players}` : ""} with ${pts(final.score)} points.`),
    final.leaderboard ? board(final.leaderboard, final.player_id) : null,
    h("p", {}, h("a", { href: "/" }, "Join another game")));
}

function drawKicked() {
  document.title = "Removed · PartyQuiz";
  meBar.hidden = true;
  replace(main,
    h("h1", {}, "You were removed from the game"),
    h("p", {}, "The host removed you. You cannot rejoin this game."),
    h("p", {}, h("a", { href: "/" }, "Back to the start")),
  );
  announce("The host removed you from the game.", { assertive: true });
}

// ---------------------------------------------------------------- keyboard

function onKey(event) {
  if (game.phase !== "question" || event.altKey || event.ctrlKey || event.metaKey) return;
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return;
  const buttons = [...document.querySelectorAll("#choices .choice")];
  if (!buttons.length) return;
  if (/^[1-6]$/.test(event.key)) {
    const i = Number(event.key) - 1;
    if (i < buttons.length) {
      event.preventDefault();
      buttons[i].focus();
      pick(i);
    }
    return;
  }
  const moves = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 };
  if (event.key in moves) {
    event.preventDefault();
    const current = buttons.indexOf(document.activeElement);
    const next = current === -1 ? 0 : (current + moves[event.key] + buttons.length) % buttons.length;
    buttons[next].focus();
  } else if (event.key === "Enter" && game.question.kind === "multiple" && !buttons.includes(document.activeElement)) {
    event.preventDefault();
    lockMultiple();
  }
}

// ---------------------------------------------------------------- start

function start() {
  document.addEventListener("keydown", onKey);
  const code = codeFromUrl();
  const stored = code ? loadSession(code) : null;
  const final = code ? loadFinal(code) : null;
  if (code && stored && stored.resume_token) {
    startResume(code, stored);
  } else if (final) {
    game.code = code;
    drawFinal(final);
  } else {
    game.code = code || null;
    drawJoin({ code: code || "" });
  }
}

start();
