// Drawings shared by the phone and the big screen: leaderboard, podium, answer distribution.
// Every number is written out as text; colour and bar length only repeat what the text says.

import { h, pts, ordinal } from "./dom.js";
import { shapeIcon, tintedShape } from "./shapes.js";

/** The ranked list of leaderboard entries; `meId` marks the viewer's own line. */
export function board(entries, meId = null) {
  return h("ol", { class: "board", "data-testid": "board" }, (entries || []).map((e) =>
    h("li", { class: e.player_id === meId ? "me" : "", dataset: { playerId: e.player_id } },
      h("span", { class: "rank" }, ordinal(e.rank)),
      h("span", { class: "name" }, e.nickname, e.player_id === meId ? " (you)" : ""),
      h("span", { class: "score" }, `${pts(e.score)} pts`))));
}

/** First, second and third place, drawn 2-1-3 like a real podium but read in rank order. */
export function podium(entries) {
  const places = [0, 1, 2].map((i) => (entries || [])[i]);
  const box = h("ol", { class: "podium", "aria-label": "Podium", "data-testid": "podium" });
  places.forEach((e, i) => {
    box.append(h("li", { class: `place p${i + 1}`, style: `order:${[2, 1, 3][i]}`, dataset: e ? { playerId: e.player_id } : {} },
      h("span", { class: "medal" }, e ? ordinal(e.rank) : ordinal(i + 1)),
      h("span", { class: "name" }, e ? e.nickname : "—"),
      h("span", { class: "score" }, e ? `${pts(e.score)} pts` : "")));
  });
  return box;
}

/** Bars for how many players picked each choice, with the count and "correct" as text. */
export function distribution(choices, counts, correct = [], { poll = false } = {}) {
  const max = Math.max(1, ...counts);
  return h("ul", { class: "dist", "data-testid": "distribution", "aria-label": "Answers given" }, choices.map((text, i) => {
    const right = !poll && correct.includes(i);
    const n = counts[i] || 0;
    return h("li", { class: right ? "is-correct" : "" },
      tintedShape(i),
      h("span", { class: "label" }, text),
      h("span", { class: "track", "aria-hidden": "true" },
        h("span", { class: "bar", style: `width:${(n / max) * 100}%;background:var(--choice-${i}-bg)` })),
      h("span", { class: "count", dataset: { count: String(n) } }, `${n} ${n === 1 ? "player" : "players"}`),
      h("span", { class: "verdict" }, right ? "✓ correct" : ""));
  }));
}

/** Static (not clickable) answer tiles for the big screen, same shapes and colours as phones. */
export function choiceTiles(choices) {
  return h("ul", { class: "choices", "aria-label": "Answers" }, choices.map((text, i) =>
    h("li", { class: `choice choice-${i}` }, shapeIcon(i), h("span", { class: "text" }, text))));
}
