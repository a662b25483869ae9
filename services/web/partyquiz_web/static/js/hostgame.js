// One host connection to a game, shared by the big screen and the host's remote control.
// Owns the host token (kept per game in localStorage, fetched again when stale), the game model
// built from the host's messages, and sending commands stamped with the version of what the
// host saw (so a double-click is refused as stale instead of skipping a phase). It draws nothing.

import { GameConnection } from "./gameclient.js";

const HELLO_ERRORS = new Set(["token_invalid", "token_expired", "forbidden", "unknown_game", "game_ended", "service_unauthorized", "web_refused"]);
const RETRY_ERRORS = new Set(["web_unavailable", "unavailable"]);

const tokenKey = (gameId) => `partyquiz.host.game.${gameId}`;

function loadKey(gameId) {
  try {
    return JSON.parse(window.localStorage.getItem(tokenKey(gameId)) || "null");
  } catch {
    return null;
  }
}

/** Remember what the web service returned for a game (create or host-token). */
export function storeKey(gameId, issued) {
  const key = { host_token: issued.host_token, ws_url: issued.ws_url, join_code: issued.join_code, join_url: issued.join_url };
  window.localStorage.setItem(tokenKey(gameId), JSON.stringify(key));
  return key;
}

async function fetchKey(gameId, call) {
  return storeKey(gameId, await call(`/api/games/${gameId}/host-token`, { method: "POST" }));
}

/** Where the game socket is: the configured URL, or /ws on this page's own host. */
export function socketUrl(configured) {
  if (configured) return configured;
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}/ws`;
}

export class HostGame {
  /**
   * @param {string} gameId
   * @param {object} options
   * @param {Function} options.call the host app's API call (401 -> login)
   * @param {(game: HostGame, msg: object|null) => void} options.onChange after every change
   * @param {(status: string, detail: object) => void} options.onStatus connection status
   * @param {(error: {code: string, message: string}) => void} options.onFatal the game cannot be shown
   * @param {(text: string) => void} options.onNotice a refused command, in words
   */
  constructor(gameId, { call, onChange, onStatus, onFatal, onNotice }) {
    this.gameId = gameId;
    this.call = call;
    this.onChange = onChange;
    this.onStatus = onStatus || (() => {});
    this.onFatal = onFatal;
    this.onNotice = onNotice || (() => {});
    this.key = null;
    this.conn = null;
    this.refreshed = false;
    this.awaitingWelcome = false;
    this.model = {
      joinCode: null,
      joinUrl: null,
      phase: null,
      players: new Map(),
      playerCount: 0,
      locked: false,
      question: null,
      cover: null,
      questionCount: 0,
      deadline: null,
      opensAt: null,
      showsAt: null,
      serverNow: null,
      remaining: null,
      paused: false,
      answered: 0,
      reveal: null,
      leaderboard: null,
      endedReason: null,
    };
  }

  /** Load the host key (or fetch one) and connect; false when the game cannot be shown. */
  async start() {
    let key = loadKey(this.gameId);
    if (!key || !key.host_token || !key.join_url) {
      try {
        key = await fetchKey(this.gameId, this.call);
      } catch (error) {
        if (error.status === 401) return false;
        this.onFatal({ code: error.code, message: error.message });
        return false;
      }
    }
    this.key = key;
    this.model.joinCode = key.join_code;
    this.model.joinUrl = key.join_url;
    this.conn = new GameConnection({
      url: socketUrl(key.ws_url),
      hello: () => {
        this.awaitingWelcome = true;
        return { type: "host", host_token: this.key.host_token };
      },
      onMessage: (msg) => this.receive(msg),
      onStatus: (status, detail) => this.onStatus(status, detail || {}),
    });
    this.conn.start();
    return true;
  }

  stop() {
    if (this.conn) this.conn.stop();
  }

  /** Send a host command for the view the host is looking at; false when not connected. */
  command(type, extra = {}) {
    if (!this.conn) return false;
    return this.conn.send({ type, version: this.conn.version, ...extra });
  }

  applySnapshot(s) {
    const m = this.model;
    m.phase = s.phase;
    m.playerCount = s.player_count;
    m.locked = s.joining_locked;
    m.questionCount = s.question_count;
    m.question = s.question;
    m.cover = s.cover || null;
    m.deadline = s.deadline;
    m.opensAt = s.opens_at;
    m.showsAt = s.shows_at;
    m.serverNow = s.server_now;
    m.remaining = s.remaining;
    m.paused = s.paused;
    m.answered = s.answered || 0;
    m.reveal = s.reveal;
    m.leaderboard = s.leaderboard;
    m.endedReason = s.ended_reason;
    if (s.players) m.players = new Map(s.players.map((p) => [p.player_id, p.nickname]));
    if (s.phase === "ended") this.conn.stop();
  }

  receive(msg) {
    const m = this.model;
    switch (msg.type) {
      case "host_welcome":
        this.awaitingWelcome = false;
        this.refreshed = false;
        if (msg.join_code) m.joinCode = msg.join_code;
        this.applySnapshot(msg.state);
        break;
      case "state":
        this.applySnapshot(msg.state);
        break;
      case "lobby":
        for (const p of msg.joined) m.players.set(p.player_id, p.nickname);
        for (const playerId of msg.left) m.players.delete(playerId);
        m.playerCount = msg.player_count;
        m.locked = msg.joining_locked;
        break;
      case "question":
        m.phase = "question";
        m.question = msg;
        m.deadline = msg.deadline;
        m.opensAt = msg.opens_at;
        m.showsAt = msg.shows_at;
        m.serverNow = msg.server_now;
        m.remaining = null;
        m.paused = false;
        m.answered = 0;
        m.reveal = null;
        break;
      case "answer_count":
        m.answered = msg.answered;
        m.playerCount = msg.total;
        break;
      case "reveal":
        m.phase = "reveal";
        m.reveal = msg;
        break;
      case "leaderboard":
        m.phase = "leaderboard";
        m.leaderboard = msg.entries;
        m.playerCount = msg.player_count;
        break;
      case "podium":
        m.phase = "podium";
        m.leaderboard = msg.entries;
        break;
      case "paused":
        m.paused = true;
        m.remaining = msg.remaining;
        m.deadline = null;
        break;
      case "resumed":
        m.paused = false;
        m.deadline = msg.deadline;
        m.opensAt = msg.deadline - m.question.time_limit;
        m.serverNow = msg.server_now;
        m.remaining = msg.remaining;
        break;
      case "ended":
        m.phase = "ended";
        m.endedReason = msg.reason;
        this.conn.stop();
        break;
      case "error":
        this.onError(msg);
        return;
      default:
        return;
    }
    this.onChange(this, msg);
  }

  onError(msg) {
    if (this.awaitingWelcome && !this.refreshed && (msg.code === "token_expired" || msg.code === "token_invalid")) {
      // The stored key is stale: get a new one once, then try again.
      this.refreshed = true;
      fetchKey(this.gameId, this.call).then((key) => {
        this.key = key;
        if (this.conn.socket) this.conn.socket.close(1000);
      }).catch((error) => this.onNotice(error.message));
      return;
    }
    if (this.awaitingWelcome && HELLO_ERRORS.has(msg.code)) {
      this.conn.stop();
      this.onFatal(msg);
      return;
    }
    if (this.awaitingWelcome && RETRY_ERRORS.has(msg.code)) {
      // The game service could not reach its storage or the web service yet; try again.
      if (this.conn.socket) this.conn.socket.close(1000);
      return;
    }
    if (msg.code === "stale_command") {
      this.onNotice("The game had already moved on; that press was ignored.");
      return;
    }
    this.onNotice(msg.message);
  }

  /** The main action of the current phase, as [command, label], or null. */
  primaryAction() {
    const m = this.model;
    switch (m.phase) {
      case "lobby": return ["start", "Start the game"];
      case "question":
        if (m.paused) return ["resume_game", "Resume"];
        return m.question && m.question.kind === "info" ? ["next", "Continue"] : ["skip", "Skip to the answer"];
      case "reveal": return ["next", "Show the leaderboard"];
      case "leaderboard":
        return ["next", m.question && m.question.index + 1 >= m.question.total ? "Show the podium" : "Next question"];
      case "podium": return ["next", "Finish the game"];
      default: return null;
    }
  }
}
