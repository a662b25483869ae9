// The host's remote control for one game, made for the host's phone (or a second window): the
// phase at a glance, the main action first, pause, lock joining, end; then every player with a
// Remove button, in every phase. Nothing here is meant for the projector.

import { h, replace, announce } from "./dom.js";
import { HostGame } from "./hostgame.js";

const PHASE_TEXT = {
  lobby: "Lobby: players are joining",
  question: "Question open",
  reveal: "Showing the answers",
  leaderboard: "Leaderboard",
  podium: "Podium",
  ended: "Game over",
};

export async function drawRemote(main, gameId, { call }) {
  document.body.classList.add("remote");
  const connBar = document.getElementById("conn");
  const notice = h("p", { class: "form-error", id: "remote-status", role: "alert" });
  const view = h("div", { id: "remote" });
  const game = new HostGame(gameId, {
    call,
    onChange: (_game, msg) => draw(msg),
    onStatus: (status, detail) => {
      connBar.hidden = status !== "reconnecting";
      connBar.className = "conn reconnecting";
      connBar.textContent = status === "reconnecting" ? `Connection lost. Reconnecting…${detail.delay >= 1000 ? ` Next try in ${Math.round(detail.delay / 1000)} s.` : ""}` : "";
    },
    onFatal: (error) => {
      replace(main,
        h("h1", {}, error.code === "game_ended" ? "This game is over" : "This game cannot be controlled"),
        h("p", {}, error.message),
        h("p", {}, h("a", { href: `/host/games/${gameId}` }, "Results of this game")));
    },
    onNotice: (text) => { notice.textContent = text; },
  });
  const m = game.model;

  function command(type, extra = {}) {
    notice.textContent = game.command(type, extra) ? "" : "Not connected to the game service; try again in a moment.";
  }

  function status() {
    if (m.phase === "question" && m.question) {
      return `Question ${m.question.index + 1} of ${m.question.total}${m.paused ? " (paused)" : ""}: ${m.answered} of ${m.playerCount} answered`;
    }
    if (m.question && (m.phase === "reveal" || m.phase === "leaderboard")) {
      return `${PHASE_TEXT[m.phase]} · question ${m.question.index + 1} of ${m.question.total}`;
    }
    return PHASE_TEXT[m.phase] || "";
  }

  function draw(msg) {
    document.title = `Remote · ${m.joinCode || ""} · PartyQuiz`;
    const focused = document.activeElement && document.activeElement.id;
    const action = game.primaryAction();
    const players = [...m.players.entries()];
    replace(view,
      h("h1", {}, "Remote control"),
      h("p", { class: "card remote-phase", id: "remote-phase", role: "status" }, h("strong", {}, `Game ${m.joinCode || ""}`), " · ", status()),
      h("div", { class: "remote-controls", role: "group", "aria-label": "Game controls" },
        action ? h("button", { type: "button", class: "big", id: "remote-primary", disabled: m.phase === "lobby" && m.playerCount < 1, onclick: () => command(action[0]) }, action[1]) : null,
        m.phase === "question" && !m.paused ? h("button", { type: "button", class: "secondary", id: "remote-pause", onclick: () => command("pause") }, "Pause") : null,
        m.phase !== "ended" ? h("button", {
          type: "button", class: "secondary", id: "remote-lock", "aria-pressed": m.locked ? "true" : "false",
          onclick: () => command(m.locked ? "unlock" : "lock"),
        }, m.locked ? "Unlock joining" : "Lock joining") : null,
        m.phase !== "ended" ? h("button", { type: "button", class: "danger", id: "remote-end", onclick: () => { if (window.confirm("End the game now for everyone?")) command("end"); } }, "End game") : null),
      notice,
      m.locked ? h("p", { class: "notice" }, "Joining is locked: nobody new can join.") : null,
      h("h2", { id: "remote-players-heading" }, `Players (${m.playerCount})`),
      players.length
        ? h("ul", { class: "remote-players", id: "remote-players", "aria-labelledby": "remote-players-heading" }, players.map(([playerId, nickname]) =>
          h("li", { dataset: { playerId } },
            h("span", { class: "name" }, nickname),
            m.phase !== "ended" ? h("button", {
              type: "button", class: "secondary", "aria-label": `Remove ${nickname}`,
              onclick: () => {
                if (window.confirm(`Remove ${nickname} from the game? They cannot join it again.`)) command("kick", { player_id: playerId });
              },
            }, "Remove") : null)))
        : h("p", {}, "Nobody has joined yet."),
      h("p", {}, h("a", { href: `/host/games/${gameId}/screen` }, "Open the big screen")));
    const again = focused && document.getElementById(focused);
    if (again) again.focus();
    if (msg && msg.type === "lobby") {
      for (const p of msg.joined) announce(`${p.nickname} joined.`);
    }
  }

  replace(main, view);
  replace(view, h("h1", {}, "Connecting to the game…"));
  if (!(await game.start())) return undefined;
  return () => {
    game.stop();
    document.body.classList.remove("remote");
    connBar.hidden = true;
  };
}
