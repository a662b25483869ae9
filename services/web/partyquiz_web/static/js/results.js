// Results of one game: final standings, per-question statistics, CSV download. While the game
// service has not delivered the results yet, the page checks again every few seconds.

import { download } from "./api.js";
import { h, replace, pts, ordinal } from "./dom.js";
import { distribution } from "./views.js";

const KIND_LABEL = {
  single: "Single choice", multiple: "Multiple choice", true_false: "True or false", poll: "Poll",
  type_answer: "Type answer", slider: "Slider", ordering: "Ordering", info: "Info slide",
};
const PICKING = new Set(["single", "multiple", "true_false", "poll"]);
const POLL_EVERY_MS = 2000;

export async function drawResults(main, gameId, { call }) {
  let timer = null;
  let active = true;
  main.classList.add("wide");

  async function load() {
    const game = await call(`/api/games/${gameId}`);
    if (!active) return;
    const quiz = game.status === "ended" ? await currentQuiz(game, call) : null;
    document.title = `Results: ${game.quiz_title} · PartyQuiz`;
    const waiting = game.status !== "ended";
    // Polls have no right answer: "correct answers" counts the questions that have one.
    const scored = game.questions.filter((q) => q.kind !== "poll").length;
    const status = h("p", { class: "form-error", role: "alert", id: "results-status" });
    replace(main,
      h("h1", {}, `Results: ${game.quiz_title}`),
      h("p", {}, `Game ${game.join_code} · ${game.player_count} ${game.player_count === 1 ? "player" : "players"}`,
        game.ended_at ? ` · ended ${new Date(game.ended_at).toLocaleString()}` : ""),
      waiting
        ? h("p", { class: "notice", role: "status" }, game.status === "created"
          ? "This game has not started yet. Results appear here when it ends."
          : "The game is still running, or its results are on their way. This page updates by itself.")
        : h("div", { class: "actions" },
          h("button", {
            type: "button", id: "download-csv",
            onclick: () => download(`/api/games/${gameId}/results.csv`, `results-${game.join_code}.csv`, "text/csv").catch((error) => { status.textContent = error.message; }),
          }, "Download CSV")),
      status,
      waiting ? null : h("section", { "aria-labelledby": "standings" },
        h("h2", { id: "standings" }, "Final standings"),
        h("table", { "data-testid": "standings" },
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, "Rank"), h("th", { scope: "col" }, "Player"),
            h("th", { scope: "col", class: "num" }, "Score"), h("th", { scope: "col", class: "num" }, "Correct answers"))),
          h("tbody", {}, game.players.map((p) => h("tr", { dataset: { playerId: p.player_id } },
            h("td", {}, ordinal(p.rank)),
            h("td", { class: "player-name" }, p.nickname),
            h("td", { class: "num player-score" }, pts(p.score)),
            h("td", { class: "num" }, `${p.correct_answers} of ${scored}`)))))),
      waiting ? null : h("section", { "aria-labelledby": "per-question" },
        h("h2", { id: "per-question" }, "Questions"),
        game.questions.map((q) => h("div", { class: "card", dataset: { questionIndex: String(q.index) } },
          h("h3", {}, `${q.index + 1}. ${q.text}`),
          h("p", { class: "hint" }, [
            KIND_LABEL[q.kind] || q.kind,
            `${q.answered} answered`,
            q.kind === "poll" ? null : `${q.answered_correctly} correct`,
            q.average_elapsed === null ? null : `average time ${q.average_elapsed.toFixed(1)} s`,
          ].filter(Boolean).join(" · ")),
          PICKING.has(q.kind)
            ? distribution(choiceTexts(quiz, q), q.choice_counts, q.correct, { poll: q.kind === "poll" })
            : rightAnswer(quiz, q)))));
    if (waiting) timer = window.setTimeout(() => load().catch(() => {}), POLL_EVERY_MS);
  }

  await load();
  return () => {
    active = false;
    window.clearTimeout(timer);
  };
}

async function currentQuiz(game, call) {
  if (!game.quiz_id) return null;
  try {
    return (await call(`/api/quizzes/${game.quiz_id}`)).quiz;
  } catch {
    return null; // deleted since: the statistics still stand without the answer texts
  }
}

/** The right answer of a type-answer, slider or ordering question, from the quiz as it is now
 * (only while the question still reads the same: it may have been edited since the game). */
function rightAnswer(quiz, q) {
  const now = quiz && quiz.questions[q.index];
  if (!now || now.text !== q.text || now.kind !== q.kind) return null;
  if (q.kind === "type_answer") return h("p", {}, `Right answers: ${now.accepted.join(", ")}`);
  if (q.kind === "slider") {
    const s = now.slider;
    return h("p", {}, `Right answer: ${s.answer}${s.unit ? ` ${s.unit}` : ""}${s.tolerance ? ` (± ${s.tolerance})` : ""}`);
  }
  if (q.kind === "ordering") return h("p", {}, `Right order: ${now.choices.map((c) => c.text).join(" > ")}`);
  return null;
}

function choiceTexts(quiz, q) {
  // Results carry counts per choice, not the texts. The quiz may have been edited since the
  // game, so its texts are used only while the question still reads the same.
  const now = quiz && quiz.questions[q.index];
  if (now && now.text === q.text && now.choices.length === q.choice_counts.length) {
    return now.choices.map((c) => c.text);
  }
  return q.choice_counts.map((_, i) => `Answer ${i + 1}`);
}
