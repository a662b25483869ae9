// The host's app: log in or register, list quizzes, open the editor, launch a game on the big
// screen, browse past games. Routed in the browser under /host/...; the server returns the same
// page for every such URL. Data comes from the JSON API with the host's Bearer token.

import { api, ApiError, download, hostToken, setHostToken } from "./api.js";
import { h, replace, announce, focusHeading } from "./dom.js";
import { drawEditor } from "./editor.js";
import { drawResults } from "./results.js";
import { storeKey } from "./hostgame.js";
import { drawRemote } from "./remote.js";
import { drawScreen } from "./screen.js";

const PAGE_SIZE = 50;
const main = document.getElementById("main");
const nav = document.getElementById("nav");
let cleanup = null;
let leaveGuard = null;
let currentPath = window.location.pathname + window.location.search;

const LEAVE_QUESTION = "You have unsaved changes. Leave without saving them?";

/** A view with unsaved work registers `() => true while there is some`; null clears it. */
export function guardLeaving(hasUnsavedWork) {
  leaveGuard = hasUnsavedWork;
}

function mayLeave() {
  return !leaveGuard || !leaveGuard() || window.confirm(LEAVE_QUESTION);
}

window.addEventListener("beforeunload", (event) => {
  if (leaveGuard && leaveGuard()) {
    event.preventDefault();
    event.returnValue = LEAVE_QUESTION;
  }
});

export function navigate(path, { replaceState = false, force = false } = {}) {
  if (!force && !mayLeave()) return;
  leaveGuard = null;
  if (replaceState) window.history.replaceState(null, "", path);
  else window.history.pushState(null, "", path);
  route();
}

export function requireLogin(message) {
  setHostToken(null);
  const next = window.location.pathname + window.location.search;
  navigate(`/host/login?next=${encodeURIComponent(next)}${message ? `&reason=${encodeURIComponent(message)}` : ""}`, { replaceState: true, force: true });
}

/** Run an API call from a view; a 401 sends the host to the login page. */
export async function call(path, options = {}) {
  try {
    return await api(path, { auth: true, ...options });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      requireLogin("Your session has ended. Log in again.");
    }
    throw error;
  }
}

function drawNav() {
  if (!hostToken()) {
    replace(nav, h("a", { href: "/host/login" }, "Log in"));
    return;
  }
  replace(nav,
    h("a", { href: "/host" }, "Quizzes"),
    h("a", { href: "/host/games" }, "Past games"),
    h("button", { type: "button", class: "link-button", onclick: () => { setHostToken(null); navigate("/host/login"); } }, "Log out"));
}

// ---------------------------------------------------------------- login / register

function drawLogin(params) {
  document.title = "Log in · PartyQuiz";
  const query = new URLSearchParams(window.location.search);
  const reason = query.get("reason");
  let mode = query.get("mode") === "register" ? "register" : "login";
  const container = h("div");

  function draw() {
    const register = mode === "register";
    const errors = {};
    const field = (id, label, type, autocomplete, hint) => {
      const input = h("input", { id, name: id, type, autocomplete, required: true, "aria-describedby": `${id}-error${hint ? ` ${id}-hint` : ""}` });
      errors[id] = h("p", { class: "field-error", id: `${id}-error` });
      return [h("label", { for: id }, label), hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null, input, errors[id]];
    };
    const formError = h("p", { class: "form-error", role: "alert" });
    const submit = h("button", { type: "submit", class: "big" }, register ? "Create account" : "Log in");
    const form = h("form", { class: "card", novalidate: true },
      field("email", "Email", "email", "username"),
      field("password", "Password", "password", register ? "new-password" : "current-password", register ? "At least 8 characters." : null),
      register ? field("display_name", "Display name (optional)", "text", "nickname") : null,
      formError,
      h("div", { class: "actions" }, submit));
    form.querySelector("#display_name")?.removeAttribute("required");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      for (const [id, el] of Object.entries(errors)) {
        el.textContent = "";
        form.querySelector(`#${id}`).setAttribute("aria-invalid", "false");
      }
      formError.textContent = "";
      const email = form.querySelector("#email").value.trim();
      const password = form.querySelector("#password").value;
      submit.disabled = true;
      try {
        if (register) {
          const displayName = form.querySelector("#display_name").value.trim();
          await api("/api/auth/register", { method: "POST", json: { email, password, display_name: displayName || null } });
        }
        const token = await api("/api/auth/login", { method: "POST", json: { email, password } });
        setHostToken(token.access_token);
        const next = query.get("next");
        navigate(next && next.startsWith("/host") && !next.startsWith("/host/login") ? next : "/host", { replaceState: true });
      } catch (error) {
        submit.disabled = false;
        if (!(error instanceof ApiError)) throw error;
        let placed = false;
        for (const item of error.errors) {
          const name = item.path.replace(/^body\./, "");
          if (errors[name]) {
            errors[name].textContent = item.message;
            form.querySelector(`#${name}`).setAttribute("aria-invalid", "true");
            placed = true;
          }
        }
        if (!placed) formError.textContent = error.message;
        const invalid = form.querySelector('[aria-invalid="true"]');
        (invalid || form.querySelector("#email")).focus();
      }
    });
    const tab = (value, label) => h("button", {
      type: "button", role: "tab", "aria-selected": mode === value ? "true" : "false",
      onclick: () => { mode = value; draw(); container.querySelector("#email").focus(); },
    }, label);
    replace(container,
      h("h1", {}, register ? "Create a host account" : "Host log in"),
      reason ? h("p", { class: "notice" }, reason) : null,
      h("div", { class: "tabs", role: "tablist", "aria-label": "Account" }, tab("login", "Log in"), tab("register", "Register")),
      form);
  }
  draw();
  replace(main, container);
  container.querySelector("#email").focus();
  void params;
}

// ---------------------------------------------------------------- quiz list

const SAMPLE_QUIZ = {
  title: "New quiz",
  description: "",
  questions: [{ kind: "single", text: "", choices: [{ text: "" }, { text: "" }, { text: "" }, { text: "" }], correct: [0], time_limit_seconds: 20, points: "standard", read_seconds: 5 }],
  settings: { streak_bonus: false, leaderboard_size: 5, auto_advance_seconds: null, get_ready_seconds: 5 },
};

async function launchGame(quizId, button) {
  button.disabled = true;
  try {
    const created = await call("/api/games", { method: "POST", json: { quiz_id: quizId } });
    storeKey(created.game_id, created);
    navigate(`/host/games/${created.game_id}/screen`);
  } catch (error) {
    button.disabled = false;
    announce(`Could not start a game: ${error.message}`, { assertive: true });
    const status = document.getElementById("list-status");
    if (status) status.textContent = `Could not start a game: ${error.message}`;
  }
}

async function drawQuizList() {
  document.title = "Your quizzes · PartyQuiz";
  const status = h("p", { class: "form-error", id: "list-status", role: "alert" });
  const done = h("p", { class: "form-status", id: "list-done", role: "status" });
  const list = h("ul", { class: "list", id: "quiz-list", "aria-label": "Your quizzes" });
  // A real button opens the file picker: keyboard users can reach and see it.
  const fileInput = h("input", { type: "file", id: "import-file", accept: "application/json,.json", hidden: true, "aria-label": "Quiz file to import" });
  const importErrors = h("ul", { class: "field-error-list", id: "import-errors" });
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files && fileInput.files[0];
    if (!file) return;
    status.textContent = "";
    done.textContent = "";
    importErrors.replaceChildren();
    try {
      const created = await call("/api/quizzes/import", { method: "POST", body: await file.text() });
      done.textContent = `Imported “${created.title}”.`;
      await fill();
    } catch (error) {
      status.textContent = `Import failed: ${error.message}`;
      for (const item of error.errors || []) {
        importErrors.append(h("li", { class: "field-error" }, `${item.path}: ${item.message}`));
      }
    } finally {
      fileInput.value = "";
    }
  });

  // Kahoot!'s quiz spreadsheet template (.xlsx): the file name becomes the title.
  const xlsxInput = h("input", { type: "file", id: "import-kahoot", accept: ".xlsx,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", hidden: true, "aria-label": "Kahoot! spreadsheet to import" });
  xlsxInput.addEventListener("change", async () => {
    const file = xlsxInput.files && xlsxInput.files[0];
    if (!file) return;
    status.textContent = "";
    done.textContent = "";
    importErrors.replaceChildren();
    const title = file.name.replace(/\.xlsx$/i, "").slice(0, 120) || "Imported from Kahoot!";
    try {
      const created = await call(`/api/quizzes/import/kahoot?title=${encodeURIComponent(title)}`, {
        method: "POST", body: await file.arrayBuffer(),
        contentType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
      });
      const n = created.question_count;
      done.textContent = `Imported “${created.title}” with ${n} ${n === 1 ? "question" : "questions"}.`;
      await fill();
    } catch (error) {
      status.textContent = `Import failed: ${error.message}`;
      for (const item of error.errors || []) {
        importErrors.append(h("li", { class: "field-error" }, `${item.path}: ${item.message}`));
      }
    } finally {
      xlsxInput.value = "";
    }
  });

  let shown = 0;
  const more = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => nextPage().catch((error) => { status.textContent = error.message; }) }, "Show more quizzes");

  async function fill() {
    shown = 0;
    list.replaceChildren();
    await nextPage();
  }

  async function nextPage() {
    const quizzes = await call(`/api/quizzes?limit=${PAGE_SIZE}&offset=${shown}`);
    if (!shown && !quizzes.length) {
      list.append(h("li", {}, "No quizzes yet. Create one, import a quiz file, or start with a sample quiz below."));
    }
    shown += quizzes.length;
    more.hidden = quizzes.length < PAGE_SIZE;
    for (const quiz of quizzes) {
      const titleId = `quiz-title-${quiz.id}`;
      const play = h("button", { type: "button", "aria-describedby": titleId }, "Play");
      play.addEventListener("click", () => launchGame(quiz.id, play));
      list.append(h("li", { dataset: { quizId: quiz.id } },
        h("div", { class: "title", id: titleId }, quiz.title),
        h("div", { class: "hint" }, `${quiz.question_count} ${quiz.question_count === 1 ? "question" : "questions"}`),
        h("div", { class: "actions" },
          play,
          h("a", { class: "button secondary", href: `/host/quizzes/${quiz.id}`, "aria-describedby": titleId }, "Edit"),
          h("button", {
            type: "button", class: "secondary", "aria-describedby": titleId,
            onclick: async () => {
              try {
                const copy = await call(`/api/quizzes/${quiz.id}/duplicate`, { method: "POST" });
                done.textContent = `Created “${copy.title}”.`;
                await fill();
              } catch (error) { status.textContent = error.message; }
            },
          }, "Duplicate"),
          h("button", {
            type: "button", class: "secondary", "aria-describedby": titleId,
            onclick: () => download(`/api/quizzes/${quiz.id}/export`, "quiz.json").catch((error) => { status.textContent = error.message; }),
          }, "Export JSON"),
          h("button", {
            type: "button", class: "danger", "aria-describedby": titleId,
            onclick: async () => {
              if (!window.confirm(`Delete “${quiz.title}”? Past games keep their results.`)) return;
              try {
                await call(`/api/quizzes/${quiz.id}`, { method: "DELETE" });
                done.textContent = `Deleted “${quiz.title}”.`;
                await fill();
              } catch (error) { status.textContent = error.message; }
            },
          }, "Delete"))));
    }
  }

  const samples = h("ul", { class: "list", id: "sample-list", "aria-labelledby": "samples-heading" });
  async function fillSamples() {
    for (const sample of await call("/api/quizzes/samples")) {
      const titleId = `sample-title-${sample.name}`;
      const add = h("button", { type: "button", class: "secondary", "aria-describedby": titleId }, "Add to my quizzes");
      add.addEventListener("click", async () => {
        add.disabled = true;
        try {
          const copy = await call(`/api/quizzes/samples/${encodeURIComponent(sample.name)}`, { method: "POST" });
          done.textContent = `Added “${copy.title}” to your quizzes.`;
          await fill();
        } catch (error) {
          status.textContent = error.message;
        } finally {
          add.disabled = false;
        }
      });
      samples.append(h("li", { dataset: { sample: sample.name } },
        h("div", { class: "title", id: titleId }, sample.title),
        h("div", { class: "hint" }, `${sample.description} ${sample.question_count} questions.`),
        h("div", { class: "actions" }, add)));
    }
  }

  replace(main,
    h("h1", {}, "Your quizzes"),
    h("div", { class: "actions" },
      h("a", { class: "button", href: "/host/quizzes/new" }, "New quiz"),
      h("button", { type: "button", class: "secondary", onclick: () => fileInput.click() }, "Import JSON file…"),
      h("button", { type: "button", class: "secondary", onclick: () => xlsxInput.click() }, "Import Kahoot! spreadsheet…"),
      fileInput, xlsxInput),
    status, importErrors, done, list, h("div", { class: "actions" }, more),
    h("h2", { id: "samples-heading" }, "Sample quizzes"),
    h("p", { class: "hint" }, "Ready to play: add one to your quizzes, then play it as it is or edit it."),
    samples);
  await Promise.all([fill(), fillSamples()]);
}

// ---------------------------------------------------------------- past games

async function drawHistory() {
  document.title = "Past games · PartyQuiz";
  const games = [];
  for (;;) {
    // Pages of the API, up to a bound a person can still scroll through.
    const page = await call(`/api/games?limit=${PAGE_SIZE}&offset=${games.length}`);
    games.push(...page);
    if (page.length < PAGE_SIZE || games.length >= 10 * PAGE_SIZE) break;
  }
  const rows = games.map((g) => h("tr", {},
    h("td", {}, h("a", { href: g.status === "ended" ? `/host/games/${g.game_id}` : `/host/games/${g.game_id}/screen` }, g.quiz_title),
      g.status === "ended" ? null : [" · ", h("a", { href: `/host/games/${g.game_id}/remote`, "aria-label": `Remote control of ${g.quiz_title} (${g.join_code})` }, "Remote control")]),
    h("td", {}, g.join_code),
    h("td", {}, { created: "Not started", running: "Running", ended: "Ended" }[g.status]),
    h("td", { class: "num" }, String(g.player_count)),
    h("td", {}, new Date(g.created_at).toLocaleString())));
  replace(main,
    h("h1", {}, "Past games"),
    games.length
      ? h("table", {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Quiz"), h("th", { scope: "col" }, "Code"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col", class: "num" }, "Players"), h("th", { scope: "col" }, "Created"))),
        h("tbody", {}, rows))
      : h("p", {}, "No games yet. Press Play next to a quiz to start one."));
}

// ---------------------------------------------------------------- routing

const ROUTES = [
  [/^\/host\/?$/, () => drawQuizList()],
  [/^\/host\/login\/?$/, (m) => drawLogin(m), { public: true }],
  [/^\/host\/quizzes\/new\/?$/, () => drawEditor(main, null, { call, navigate, guardLeaving, template: SAMPLE_QUIZ })],
  [/^\/host\/quizzes\/([^/]+)\/?$/, (m) => drawEditor(main, m[1], { call, navigate, guardLeaving, template: SAMPLE_QUIZ })],
  [/^\/host\/games\/?$/, () => drawHistory()],
  [/^\/host\/games\/([^/]+)\/screen\/?$/, (m) => drawScreen(main, m[1], { call })],
  [/^\/host\/games\/([^/]+)\/remote\/?$/, (m) => drawRemote(main, m[1], { call })],
  [/^\/host\/games\/([^/]+)\/?$/, (m) => drawResults(main, m[1], { call })],
];

async function route() {
  if (cleanup) {
    const stop = cleanup;
    cleanup = null;
    stop();
  }
  document.body.classList.remove("screen");
  main.classList.remove("wide");
  leaveGuard = null;
  const path = window.location.pathname;
  currentPath = path + window.location.search;
  for (const [pattern, view, options] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    if (!(options && options.public) && !hostToken()) {
      requireLogin();
      return;
    }
    drawNav();
    replace(main, h("p", { role: "status" }, "Loading…"));
    try {
      const result = await view(match);
      if (typeof result === "function") cleanup = result;
      if (!main.contains(document.activeElement) || document.activeElement === main) focusHeading(main);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      replace(main,
        h("h1", {}, error instanceof ApiError && error.status === 404 ? "Not found" : "Something went wrong"),
        h("p", { role: "alert" }, error.message || String(error)),
        h("p", {}, h("a", { href: "/host" }, "Back to your quizzes")));
    }
    return;
  }
  drawNav();
  replace(main, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "/host" }, "Back to your quizzes")));
}

document.addEventListener("click", (event) => {
  const link = event.target instanceof Element ? event.target.closest("a[href]") : null;
  if (!link || link.target || link.hasAttribute("download") || event.defaultPrevented) return;
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href, window.location.href);
  if (url.origin !== window.location.origin || !url.pathname.startsWith("/host")) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", () => {
  if (!mayLeave()) {
    // Stay: put the editor's address back on top of the history.
    window.history.pushState(null, "", currentPath);
    return;
  }
  route();
});

route();
