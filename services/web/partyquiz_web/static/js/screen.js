// The big screen for one game: what the room sees, sized for a projector or a TV from 1280x720 to
// 3840x2160 (type and tiles scale with the screen). Lobby with the join address, code and QR;
// get ready; the question read aloud; answers with a big countdown and the answer count; the
// answers given; leaderboard with streaks; a podium revealed third, second, first; music.
// The host's controls sit in a small dock at the bottom edge (they can be hidden, and also run
// on the host's phone as the remote); moderation (the player list, kick) is in the remote
// only, so nothing of it is projected. The game service decides; this only asks.

import { formatNumber } from "./answers.js";
import { h, replace, announce, pts, ordinal } from "./dom.js";
import { Countdown, before, stepEndsIn } from "./gameclient.js";
import { HostGame } from "./hostgame.js";
import { shapeIcon } from "./shapes.js";
import { Sound } from "./sound.js";

const POINTS_LABEL = { double: "Double points", none: "No points", standard: "" };
const STREAK_SHOWN_FROM = 2;
const ON_THE_PHONE = {
  type_answer: "Type your answer on your phone",
  slider: "Pick the number on your phone",
  ordering: "Put these in order on your phone",
};

export async function drawScreen(main, gameId, { call }) {
  document.body.classList.add("screen");
  main.classList.add("wide");
  const connBar = document.getElementById("conn");
  const stage = h("div", { id: "stage", class: "stage" });
  const notice = h("p", { class: "dock-notice", id: "screen-status", role: "alert" });
  const dock = h("div", { class: "dock", id: "dock", role: "group", "aria-label": "Host controls" });
  const sound = new Sound();
  let drawn = null;
  let countdown = null;
  let phaseTimer = null;
  let controlsHidden = false;

  const game = new HostGame(gameId, {
    call,
    onChange: (_game, msg) => render(msg),
    onStatus: (status, detail) => {
      if (status === "reconnecting") {
        connBar.className = "conn reconnecting";
        connBar.textContent = `Connection to the game service lost. Reconnecting…${detail.delay >= 1000 ? ` Next try in ${Math.round(detail.delay / 1000)} s.` : ""}`;
        connBar.hidden = false;
      } else {
        connBar.hidden = true;
        connBar.textContent = "";
      }
    },
    onFatal: (error) => {
      replace(main,
        h("h1", {}, error.code === "game_ended" ? "This game is over" : "This game cannot be shown"),
        h("p", {}, error.message),
        h("p", {}, h("a", { href: `/host/games/${gameId}` }, "Results of this game"), " · ", h("a", { href: "/host" }, "Your quizzes")));
    },
    onNotice: (text) => { notice.textContent = text; },
  });
  const m = game.model;

  function command(type, extra = {}) {
    notice.textContent = game.command(type, extra) ? "" : "Not connected to the game service; try again in a moment.";
  }

  // ------------------------------------------------------------ dock (host only)

  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else document.documentElement.requestFullscreen().catch(() => { notice.textContent = "This browser refused full screen."; });
  }

  function drawDock() {
    const action = game.primaryAction();
    const soundState = sound.state();
    replace(dock,
      action ? h("button", { type: "button", class: "primary", id: "primary", "data-command": action[0], disabled: m.phase === "lobby" && m.playerCount < 1, onclick: () => command(action[0]) }, action[1]) : null,
      m.phase === "question" && !m.paused ? h("button", { type: "button", id: "pause", onclick: () => command("pause") }, "Pause") : null,
      m.phase === "ended"
        ? h("a", { class: "button", href: `/host/games/${gameId}` }, "See the results")
        : h("a", { class: "button", href: `/host/games/${gameId}/remote`, target: "_blank", rel: "noopener", id: "open-remote" }, "Players & remote"),
      h("button", { type: "button", id: "fullscreen", "aria-pressed": document.fullscreenElement ? "true" : "false", onclick: toggleFullscreen }, "Full screen"),
      h("button", {
        type: "button", id: "mute", "aria-pressed": soundState === "on" ? "false" : "true",
        title: soundState === "off-reduced-motion" ? "Sound is off because this device asks for reduced motion" : "",
        onclick: () => { sound.toggle(); drawDock(); },
      }, soundState === "on" ? "Mute" : "Sound on"),
      h("button", { type: "button", id: "hide-controls", onclick: () => setControlsHidden(true) }, "Hide controls"),
      m.phase !== "ended" && m.phase !== null ? h("button", { type: "button", class: "danger", id: "end", onclick: () => { if (window.confirm("End the game now for everyone?")) command("end"); } }, "End game") : null,
      notice);
  }

  function setControlsHidden(hidden) {
    controlsHidden = hidden;
    document.body.classList.toggle("controls-hidden", hidden);
    showControls.hidden = !hidden;
    if (!hidden) dock.querySelector("button, a")?.focus();
    else showControls.focus();
  }
  const showControls = h("button", { type: "button", class: "show-controls", id: "show-controls", hidden: true, onclick: () => setControlsHidden(false) }, "Show host controls");

  function onKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return;
    if (target instanceof HTMLButtonElement || target instanceof HTMLAnchorElement) {
      if (event.key === " " || event.key === "Enter") return; // the focused control handles it
    }
    const action = game.primaryAction();
    if ((event.key === " " || event.key === "Enter" || event.key === "ArrowRight") && action) {
      event.preventDefault();
      command(action[0]);
    } else if (event.key === "f" || event.key === "F") {
      toggleFullscreen();
    } else if (event.key === "m" || event.key === "M") {
      sound.toggle();
      drawDock();
    } else if (event.key === "h" || event.key === "H") {
      setControlsHidden(!controlsHidden);
    } else if ((event.key === "p" || event.key === "P") && m.phase === "question") {
      command(m.paused ? "resume_game" : "pause");
    }
  }

  // ------------------------------------------------------------ stage (what the room sees)

  function joinHost() {
    try {
      return new URL(m.joinUrl).host;
    } catch {
      return window.location.host;
    }
  }

  function corner() {
    return h("div", { class: "corner" },
      h("span", {}, "Join at ", h("strong", {}, `${joinHost()}/join`), " · code ", h("strong", { "data-testid": "corner-code" }, m.joinCode || "")),
      h("span", { "data-testid": "corner-players" }, `${m.playerCount} ${m.playerCount === 1 ? "player" : "players"}`));
  }

  function drawLobby() {
    document.title = `Join with ${m.joinCode} · PartyQuiz`;
    const names = [...m.players.values()];
    replace(stage,
      h("div", { class: "lobby" },
        h("section", { class: "join-box", "aria-labelledby": "join-heading" },
          h("h1", { id: "join-heading", class: "join-url" }, "Join at ", h("strong", {}, `${joinHost()}/join`)),
          h("p", { class: "join-label" }, "Game code"),
          h("p", { class: "join-code", id: "join-code", "data-testid": "join-code" }, m.joinCode || "…"),
          m.joinCode ? h("img", { class: "qr", id: "qr", src: `/qr/${m.joinCode}.svg`, alt: `QR code that opens ${m.joinUrl || ""}` }) : null),
        h("section", { class: "lobby-players", "aria-labelledby": "players-heading" },
          m.cover ? h("img", { class: "cover", id: "cover", src: m.cover, alt: "", "data-testid": "cover" }) : null,
          h("h2", { id: "players-heading" }, h("span", { id: "player-count", "data-testid": "player-count" }, String(m.playerCount)), m.playerCount === 1 ? " player" : " players"),
          names.length
            ? h("ul", { class: "chips", id: "players", "aria-label": "Players" }, names.map((n) => h("li", {}, n)))
            : h("p", { class: "waiting" }, "Waiting for players to join…"),
          m.locked ? h("p", { class: "locked-note" }, "Joining is locked") : null)));
  }

  function timerParts() {
    const countEl = h("span", { class: "timer-count", "aria-hidden": "true" });
    const fillEl = h("div", { class: "timer-fill" });
    return { countEl, fillEl, track: h("div", { class: "timer-track", "aria-hidden": "true" }, fillEl) };
  }

  function serverClock() {
    return game.conn ? game.conn.serverNow() : Date.now() / 1000;
  }

  /** Where in a question we are: "ready", "read" or "answer" (from the server's times). */
  function questionStep(now) {
    if (m.paused || m.opensAt === null || m.opensAt === undefined) return "answer";
    if (before(m.showsAt, m.serverNow, now)) return "ready";
    return before(m.opensAt, m.serverNow, now) ? "read" : "answer";
  }

  function scheduleStep(step, now) {
    window.clearTimeout(phaseTimer);
    if (m.phase !== "question" || m.paused) return;
    const wait = stepEndsIn(step, m, now);
    if (wait !== null) phaseTimer = window.setTimeout(() => render(null), wait);
  }

  function drawReady() {
    document.title = "Get ready · PartyQuiz";
    const { countEl, fillEl, track } = timerParts();
    replace(stage,
      h("div", { class: "ready" },
        h("p", { class: "ready-kicker" }, `${m.questionCount} ${m.questionCount === 1 ? "question" : "questions"}`),
        h("h1", { class: "ready-title" }, "Get ready!"),
        h("div", { class: "big-count", id: "ready-count" }, countEl),
        track));
    startCountdown(countEl, fillEl, m.showsAt, m.showsAt - (m.serverNow || m.showsAt), "until the first question");
  }

  function drawRead() {
    const q = m.question;
    document.title = `Question ${q.index + 1} · PartyQuiz`;
    const { countEl, fillEl, track } = timerParts();
    const points = POINTS_LABEL[q.points];
    replace(stage,
      corner(),
      h("div", { class: "reading" },
        h("p", { class: "q-meta" }, h("span", {}, `Question ${q.index + 1} of ${q.total}`), points ? h("span", { class: "badge" }, points) : null),
        h("h1", { class: "q-text big", id: "q-text" }, q.text),
        picture(q),
        h("p", { class: "read-note" }, "Answers open in ", countEl),
        track));
    startCountdown(countEl, fillEl, m.opensAt, Math.max(1, m.opensAt - (m.showsAt || m.opensAt)), "until answers open");
  }

  function startCountdown(countEl, fillEl, until, total, label) {
    if (countdown) countdown.stop();
    countdown = new Countdown(countEl, fillEl, (s) => {
      const text = document.getElementById("timer-text");
      if (text) text.textContent = `${s} seconds ${label}`;
    });
    countdown.run(until, serverClock(), total);
  }

  function tiles(q, { reveal = null } = {}) {
    const max = reveal ? Math.max(1, ...reveal.distribution) : 1;
    const poll = q.kind === "poll";
    return h("ul", { class: `tiles n${q.choices.length}`, id: "tiles", "aria-label": "Answers" }, q.choices.map((text, i) => {
      const right = reveal && !poll && reveal.correct.includes(i);
      const n = reveal ? reveal.distribution[i] || 0 : null;
      return h("li", { class: `tile choice-${i}${reveal ? (right ? " is-correct" : poll ? "" : " is-wrong") : ""}` },
        shapeIcon(i),
        h("span", { class: "text" }, text),
        reveal ? " " : null,
        reveal ? h("span", { class: "tally", dataset: { count: String(n) } },
          h("span", { class: "bar", style: `width:${(n / max) * 100}%`, "aria-hidden": "true" }),
          h("span", { class: "n" }, `${n}`),
          h("span", { class: "visually-hidden" }, ` ${n === 1 ? "player" : "players"}${right ? ", correct" : ""}`)) : null,
        right ? h("span", { class: "verdict", "aria-hidden": "true" }, " ✓") : null);
    }));
  }

  /** Shrinks the answers' type, all tiles together, until every word fits its tile and every
   * answer its tile's height: a word is never split across lines because a count and a tick sit
   * beside it. Never below the stage's legible minimum: a word too long even there is broken
   * (that answer alone), and the others are fitted as if it were not there. */
  function fitTiles() {
    const list = document.getElementById("tiles");
    const texts = list ? [...list.querySelectorAll(".tile .text")] : [];
    if (!texts.length) return;
    const floor = parseFloat(getComputedStyle(stage).fontSize);
    const room = (el) => Math.min(el.clientWidth / el.scrollWidth, el.parentElement.clientHeight / el.parentElement.scrollHeight);
    const shrink = () => {
      list.style.removeProperty("--tile-text");
      let size = parseFloat(getComputedStyle(texts[0]).fontSize);
      for (let tries = 0; tries < 8 && size > floor; tries++) {
        const worst = Math.min(...texts.map(room));
        if (worst >= 1) return;
        size = Math.max(floor, Math.floor(size * Math.min(worst, 0.95)));
        list.style.setProperty("--tile-text", `${size}px`);
      }
    };
    for (const el of texts) el.classList.remove("squeezed");
    shrink();
    const tooLong = texts.filter((el) => el.scrollWidth > el.clientWidth);
    if (!tooLong.length) return;
    for (const el of tooLong) el.classList.add("squeezed");
    shrink();
  }

  /** While a type-answer, slider or ordering question is open: what to do, and for an ordering
   * question its items (shuffled, as the phones show them). */
  function inputPanel(q) {
    if (q.kind === "ordering") {
      return h("ol", { class: `tiles order-tiles n${q.choices.length}`, id: "tiles", "aria-label": "Items to put in order" },
        q.choices.map((text, i) => h("li", { class: `tile choice-${i}` }, shapeIcon(i), h("span", { class: "text" }, text))));
    }
    if (q.kind === "slider") {
      return h("div", { class: "panel", id: "panel" },
        h("p", { class: "panel-text" }, ON_THE_PHONE.slider),
        scale(q.slider));
    }
    return h("div", { class: "panel", id: "panel" },
      h("p", { class: "panel-icon", "aria-hidden": "true" }, "⌨"),
      h("p", { class: "panel-text" }, ON_THE_PHONE.type_answer));
  }

  /** A slider's scale from end to end; with a reveal, the right number and its tolerance. */
  function scale(slider, reveal = null) {
    const span = slider.max - slider.min;
    const at = (value) => `${Math.min(100, Math.max(0, ((value - slider.min) / span) * 100))}%`;
    const track = h("div", { class: "scale-track", "aria-hidden": "true" });
    if (reveal) {
      const low = reveal.correct_value - (reveal.tolerance || 0);
      const high = reveal.correct_value + (reveal.tolerance || 0);
      track.append(
        h("span", { class: "scale-band", style: `left:${at(low)};width:calc(${at(high)} - ${at(low)})` }),
        h("span", { class: "scale-mark", style: `left:${at(reveal.correct_value)}` }));
    }
    return h("div", { class: "scale", "data-testid": "scale" },
      h("span", { class: "scale-end" }, formatNumber(slider.min, slider)),
      track,
      h("span", { class: "scale-end" }, formatNumber(slider.max, slider)));
  }

  /** The answer to a type-answer, slider or ordering question, and how many got it. */
  function revealPanel(q, r) {
    const [right, partly, wrong] = r.distribution;
    const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;
    const tally = h("p", { class: "panel-tally", "data-testid": "tally" },
      q.kind === "slider"
        ? `${count(right, "right", "right")} · ${count(partly, "close", "close")} · ${count(wrong, "off", "off")}`
        : q.kind === "ordering"
          ? `${count(right, "player", "players")} got the order right`
          : `${count(right, "right answer", "right answers")} · ${count(wrong, "wrong", "wrong")}`);
    if (q.kind === "ordering") {
      return h("div", { class: "reveal-panel" },
        h("ol", { class: `tiles order-tiles n${q.choices.length}`, id: "tiles", "aria-label": "The right order" },
          r.correct.map((i, place) => h("li", { class: `tile choice-${i} is-correct` },
            h("span", { class: "place" }, `${place + 1}.`), shapeIcon(i), h("span", { class: "text" }, q.choices[i])))),
        tally);
    }
    if (q.kind === "slider") {
      return h("div", { class: "panel reveal-panel", id: "panel" },
        h("p", { class: "panel-answer", "data-testid": "right-answer" }, formatNumber(r.correct_value, q.slider),
          r.tolerance ? h("span", { class: "panel-tolerance" }, ` ± ${formatNumber(r.tolerance, { ...q.slider, unit: "" })}`) : null),
        scale(q.slider, r),
        tally);
    }
    return h("div", { class: "panel reveal-panel", id: "panel" },
      h("ul", { class: "accepted", "data-testid": "right-answer", "aria-label": "Right answers" },
        (r.accepted || []).map((text) => h("li", {}, text))),
      tally);
  }

  /** The question's picture, large: beside the answers (above them on a tall screen). */
  function picture(q) {
    return q.image ? h("img", { class: "q-picture", id: "q-picture", src: q.image, alt: "", "data-testid": "q-picture" }) : null;
  }

  /** The answers, with the picture beside them when there is one. */
  function body(q, answers) {
    return q.image ? h("div", { class: "q-body" }, picture(q), answers) : answers;
  }

  function drawInfo() {
    const q = m.question;
    document.title = "PartyQuiz";
    const { countEl, fillEl, track } = timerParts();
    replace(stage,
      corner(),
      h("div", { class: "reading info-slide" },
        h("h1", { class: "q-text big", id: "q-text" }, q.text),
        picture(q),
        h("span", { class: "visually-hidden" }, countEl),
        track));
    startCountdown(countEl, fillEl, m.deadline ?? serverClock(), q.time_limit, "until the next question");
  }

  function drawAnswering() {
    const q = m.question;
    if (q.kind === "info") {
      drawInfo();
      return;
    }
    document.title = `Question ${q.index + 1} · PartyQuiz`;
    const { countEl, fillEl } = timerParts();
    const points = POINTS_LABEL[q.points];
    replace(stage,
      corner(),
      h("div", { class: "asking" },
        h("div", { class: "q-head" },
          h("div", { class: `countdown${m.paused ? " paused" : ""}`, id: "timer" }, countEl, h("span", { class: "visually-hidden", id: "timer-text" })),
          h("div", { class: "q-main" },
            h("p", { class: "q-meta" }, h("span", {}, `Question ${q.index + 1} of ${q.total}`), points ? h("span", { class: "badge" }, points) : null, m.paused ? h("span", { class: "badge paused-badge" }, "Paused") : null),
            h("h1", { class: "q-text", id: "q-text" }, q.text),
            q.kind === "ordering" ? h("p", { class: "q-hint" }, ON_THE_PHONE.ordering) : null),
          h("div", { class: "answer-count", id: "answered", "data-testid": "answered", "aria-live": "polite" },
            h("b", {}, String(m.answered)), " ", h("span", {}, `of ${m.playerCount} answered`))),
        body(q, q.kind in ON_THE_PHONE ? inputPanel(q) : tiles(q))));
    if (countdown) countdown.stop();
    countdown = new Countdown(countEl, fillEl, (s) => {
      const text = document.getElementById("timer-text");
      if (text) text.textContent = `${s} seconds left`;
      document.getElementById("timer")?.classList.toggle("three-digits", s >= 100);
    });
    if (m.paused || m.deadline === null) countdown.freeze(Math.min(m.remaining ?? 0, q.time_limit), q.time_limit);
    else countdown.run(m.deadline, serverClock(), q.time_limit);
  }

  function drawReveal() {
    const q = m.question;
    const r = m.reveal;
    document.title = "Answers · PartyQuiz";
    replace(stage,
      corner(),
      h("div", { class: "asking revealed" },
        h("div", { class: "q-head" },
          h("div", { class: "q-main" },
            h("p", { class: "q-meta" }, h("span", {}, `Question ${q.index + 1} of ${q.total}`)),
            h("h1", { class: "q-text", id: "q-text" }, q.text)),
          h("div", { class: "answer-count" }, h("b", {}, String(r.answered)), " ", h("span", {}, `of ${r.total} answered`))),
        body(q, h("div", { class: "distribution", "data-testid": "distribution" }, q.kind in ON_THE_PHONE ? revealPanel(q, r) : tiles(q, { reveal: r })))));
  }

  function streakBadge(e) {
    return e.streak >= STREAK_SHOWN_FROM ? h("span", { class: "streak", "data-testid": "streak" }, `🔥 ${e.streak} in a row`) : null;
  }

  function drawLeaderboard() {
    document.title = "Leaderboard · PartyQuiz";
    replace(stage,
      corner(),
      h("div", { class: "standings" },
        h("h1", {}, "Leaderboard"),
        h("ol", { class: "big-board", "data-testid": "board" }, (m.leaderboard || []).map((e) =>
          h("li", { dataset: { playerId: e.player_id } },
            h("span", { class: "rank" }, ordinal(e.rank)),
            h("span", { class: "name" }, e.nickname, streakBadge(e)),
            h("span", { class: "score" }, pts(e.score)))))));
  }

  function drawPodium() {
    document.title = "Podium · PartyQuiz";
    const entries = m.leaderboard || [];
    const places = [0, 1, 2].map((i) => entries[i]);
    // Drawn 2-1-3 like a real podium; revealed third, second, first (the delays are in CSS).
    replace(stage,
      h("div", { class: "podium-stage" },
        h("h1", {}, "Podium"),
        h("ol", { class: "big-podium", "aria-label": "Podium", "data-testid": "podium" }, places.map((e, i) =>
          h("li", { class: `place p${i + 1}`, style: `order:${[2, 1, 3][i]}`, dataset: e ? { playerId: e.player_id } : {} },
            h("span", { class: "name" }, e ? e.nickname : "—"),
            h("span", { class: "score" }, e ? `${pts(e.score)} pts` : ""),
            h("span", { class: "block" }, h("span", { class: "medal" }, ordinal(e ? e.rank : i + 1))))))));
  }

  function drawEnded() {
    document.title = "Game over · PartyQuiz";
    replace(stage,
      h("div", { class: "standings" },
        h("h1", {}, "Game over"),
        h("p", { class: "subtitle" }, m.endedReason === "ended_by_host" ? "The host ended the game." : "Thanks for playing!"),
        m.leaderboard && m.leaderboard.length
          ? h("ol", { class: "big-board", "data-testid": "board" }, m.leaderboard.map((e) =>
            h("li", {}, h("span", { class: "rank" }, ordinal(e.rank)), h("span", { class: "name" }, e.nickname), h("span", { class: "score" }, pts(e.score)))))
          : null));
  }

  function render(msg) {
    if (m.phase === null) return;
    const now = serverClock(); // one reading for the step and its end (see stepEndsIn)
    const step = m.phase === "question" ? questionStep(now) : "";
    const key = `${m.phase}:${m.question ? m.question.index : ""}:${step}:${m.paused}`;
    const fresh = key !== drawn;
    drawn = key;
    const draw = {
      lobby: drawLobby,
      question: { ready: drawReady, read: drawRead, answer: drawAnswering }[step],
      reveal: drawReveal,
      leaderboard: drawLeaderboard,
      podium: drawPodium,
      ended: drawEnded,
    }[m.phase];
    if (m.phase !== "question" && countdown) countdown.stop();
    if (fresh || m.phase === "lobby" || m.phase === "leaderboard") {
      draw();
      fitTiles();
    } else if (m.phase === "question") {
      const count = document.getElementById("answered");
      if (count) replace(count, h("b", {}, String(m.answered)), " ", h("span", {}, `of ${m.playerCount} answered`));
    }
    const corner = stage.querySelector("[data-testid=corner-players]");
    if (corner) corner.textContent = `${m.playerCount} ${m.playerCount === 1 ? "player" : "players"}`;
    scheduleStep(step, now);
    const focused = document.activeElement && document.activeElement.id;
    drawDock();
    const again = focused && document.getElementById(focused);
    if (again && dock.contains(again)) again.focus();
    else if (fresh && !controlsHidden) document.getElementById("primary")?.focus({ preventScroll: true });
    if (fresh) {
      music(step);
      if (msg && msg.type === "question" && step === "read") announce(`Question ${m.question.index + 1}: ${m.question.text}`);
    }
    if (msg && msg.type === "lobby") for (const p of msg.joined) announce(`${p.nickname} joined.`);
    if (msg && msg.type === "reveal") announce(`Time is up. ${msg.answered} of ${msg.total} answered.`);
  }

  function music(step) {
    if (m.phase === "lobby") sound.play("lobby");
    else if (m.phase === "question" && step === "answer" && !m.paused) sound.play("question");
    else if (m.phase === "question") sound.play(null);
    else if (m.phase === "reveal") sound.sting("reveal");
    else if (m.phase === "podium") sound.sting("podium");
    else sound.play(null);
  }

  const onFullscreen = () => drawDock();
  const onResize = () => fitTiles();
  replace(main, stage, dock, showControls);
  replace(stage, h("h1", { class: "connecting" }, "Connecting to the game…"));
  document.addEventListener("keydown", onKey);
  document.addEventListener("fullscreenchange", onFullscreen);
  window.addEventListener("resize", onResize);
  drawDock();
  if (!(await game.start())) {
    sound.close();
    return undefined;
  }
  return () => {
    game.stop();
    sound.close();
    if (countdown) countdown.stop();
    window.clearTimeout(phaseTimer);
    document.removeEventListener("keydown", onKey);
    document.removeEventListener("fullscreenchange", onFullscreen);
    window.removeEventListener("resize", onResize);
    document.body.classList.remove("controls-hidden");
    connBar.hidden = true;
  };
}
