// The quiz editor: every question kind (choices and the right ones, accepted typed answers, a
// slider's scale, items in their right order), time limit, reading time and points mode, a
// picture per question and a cover (uploaded at once, previewed, removable), and the quiz's
// game settings. Leaving with unsaved changes asks first.
// Validation is the API's: a 422 lists field paths (questions.2.correct), and each message is
// drawn next to its field (or the nearest enclosing one) and linked with aria-describedby.

import { ApiError, download } from "./api.js";
import { h, replace, announce } from "./dom.js";
import { tintedShape } from "./shapes.js";

// Short enough to read whole in the half-width select; each kind's block says the rest.
const KINDS = [
  ["single", "Single choice"],
  ["multiple", "Multiple choice"],
  ["true_false", "True or false"],
  ["poll", "Poll (no points)"],
  ["type_answer", "Type answer"],
  ["slider", "Slider (a number)"],
  ["ordering", "Put in order"],
  ["info", "Info slide"],
];
const PICKING = new Set(["single", "multiple", "true_false", "poll"]);
const MAX_ACCEPTED = 10;
const MIN_ORDERING_ITEMS = 3;
const NEW_SLIDER = { min: 0, max: 100, step: 1, answer: 50, tolerance: 0, unit: "" };
const POINTS = [["standard", "Standard (up to 1000)"], ["double", "Double (up to 2000)"], ["none", "No points"]];
const MAX_CHOICES = 6;
const MIN_CHOICES = 2;

const fieldId = (path) => `f-${path.replace(/\./g, "-")}`;
const ORDINALS = ["First", "Second", "Third", "Fourth", "Fifth", "Sixth"];
const ordinalWord = (j) => ORDINALS[j] || `Item ${j + 1}`;

function copy(value) {
  return JSON.parse(JSON.stringify(value));
}

function normaliseKind(q) {
  // Fields of another kind would be refused: each kind keeps only its own.
  if (q.kind !== "type_answer") delete q.accepted;
  if (q.kind !== "slider") delete q.slider;
  if (q.kind === "info") {
    q.choices = [];
    q.correct = [];
    q.points = "none";
    q.read_seconds = 0;
    return;
  }
  if (q.kind === "type_answer" || q.kind === "slider") {
    q.choices = [];
    q.correct = [];
    if (q.kind === "type_answer" && !(q.accepted && q.accepted.length)) q.accepted = [""];
    if (q.kind === "slider" && !q.slider) q.slider = { ...NEW_SLIDER };
    return;
  }
  if (q.kind === "ordering") {
    q.correct = [];
    while (q.choices.length < MIN_ORDERING_ITEMS) q.choices.push({ text: "" });
    return;
  }
  if (!q.choices.length) q.choices = [{ text: "" }, { text: "" }];
  if (q.kind === "true_false") {
    q.choices = [{ text: "True" }, { text: "False" }];
    q.correct = q.correct.length === 1 && q.correct[0] < 2 ? q.correct : [0];
  } else if (q.kind === "poll") {
    q.correct = [];
    q.points = "none"; // a poll scores nothing, whatever the mode
  } else if (q.kind === "single") {
    q.correct = q.correct.length ? [q.correct[0]] : [0];
  } else if (q.kind === "multiple" && !q.correct.length) {
    q.correct = [0];
  }
}

const NEW_QUESTION = { kind: "single", text: "", choices: [{ text: "" }, { text: "" }, { text: "" }, { text: "" }], correct: [0], time_limit_seconds: 20, points: "standard", read_seconds: 5 };
const DEFAULT_SETTINGS = { streak_bonus: false, leaderboard_size: 5, auto_advance_seconds: null, get_ready_seconds: 5, images_on_phones: false };
// What the server takes (it decides from the bytes; this only narrows the file picker, which
// still offers a phone's photo library and camera).
const PICTURE_TYPES = "image/png,image/jpeg,image/webp,image/gif";
const imageAddress = (ref) => (ref.startsWith("/images/") ? ref : `/images/${ref}`);

export async function drawEditor(main, quizId, { call, navigate, guardLeaving, template }) {
  let id = quizId;
  let quiz;
  if (id) {
    const record = await call(`/api/quizzes/${id}`);
    quiz = copy(record.quiz);
  } else {
    quiz = copy(template);
  }
  quiz.settings = { ...DEFAULT_SETTINGS, ...(quiz.settings || {}) };
  // What the server has (or the empty template): anything else is unsaved work.
  let saved = JSON.stringify(quiz);
  if (guardLeaving) guardLeaving(() => JSON.stringify(quiz) !== saved);
  let errors = new Map();
  let formMessage = "";
  let statusMessage = "";

  function errorFor(path) {
    const message = errors.get(path) || "";
    return h("p", { class: "field-error", id: `${fieldId(path)}-error` }, message);
  }

  function control(tag, path, attrs, ...children) {
    const invalid = errors.has(path);
    const describedBy = [`${fieldId(path)}-error`, attrs["aria-describedby"]].filter(Boolean).join(" ");
    return h(tag, { ...attrs, id: fieldId(path), dataset: { path }, "aria-invalid": invalid ? "true" : "false", "aria-describedby": describedBy }, ...children);
  }

  // A picture field: the file picker uploads at once; the quiz keeps the returned digest.
  // ``owner[key]`` holds it (a question's ``image``, the quiz's ``cover``).
  function pictureField(owner, key, path, label) {
    const input = h("input", {
      type: "file", accept: PICTURE_TYPES, hidden: true, id: `${fieldId(path)}-file`, "aria-label": `${label}: file`,
    });
    const progress = h("p", { class: "form-status", role: "status", id: `${fieldId(path)}-status` });
    input.addEventListener("change", async () => {
      const file = input.files && input.files[0];
      if (!file) return;
      progress.textContent = "Uploading…";
      errors.delete(path);
      try {
        const image = await call("/api/images", { method: "POST", body: file, contentType: "application/octet-stream" });
        owner[key] = image.id;
        draw(fieldId(path));
        announce(`${label} added.`);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.status === 401) return;
        const message = error.status === 413
          ? "This file is larger than 5 MB. Choose a smaller picture."
          : error.status === 422 ? `This file cannot be used: ${error.message}.`
            : error.message;
        errors.set(path, message);
        draw(fieldId(path));
      } finally {
        input.value = "";
      }
    });
    const ref = owner[key];
    return h("div", { class: "picture-field" },
      h("span", { class: "picture-label" }, label),
      ref ? h("img", { class: "picture-preview", src: imageAddress(ref), alt: `${label} (preview)` }) : null,
      input,
      h("div", { class: "actions", style: "margin:0" },
        control("button", path, { type: "button", class: "secondary", onclick: () => input.click() },
          ref ? "Replace picture…" : "Add a picture…"),
        ref ? h("button", {
          type: "button", class: "secondary", "aria-label": `Remove ${label.toLowerCase()}`,
          onclick: () => { delete owner[key]; errors.delete(path); draw(fieldId(path)); },
        }, "Remove picture") : null),
      progress,
      errorFor(path));
  }

  function questionBlock(q, i) {
    const base = `questions.${i}`;
    const info = q.kind === "info";
    const ordering = q.kind === "ordering";
    const word = ordering ? "item" : "answer";
    const choiceInputs = q.choices.map((choice, j) => {
      const path = `${base}.choices.${j}.text`;
      const swap = (delta) => {
        [q.choices[j], q.choices[j + delta]] = [q.choices[j + delta], q.choices[j]];
        draw(fieldId(`${base}.choices.${j + delta}.text`));
      };
      const correctControl = q.kind === "poll" ? h("span") : ordering ? h("span", { class: "actions", style: "margin:0" },
        h("button", { type: "button", class: "secondary", disabled: j === 0, "aria-label": `Move item ${j + 1} of question ${i + 1} up`, onclick: () => swap(-1) }, "↑"),
        h("button", { type: "button", class: "secondary", disabled: j === q.choices.length - 1, "aria-label": `Move item ${j + 1} of question ${i + 1} down`, onclick: () => swap(1) }, "↓")) : h("label", {},
        h("input", {
          type: q.kind === "multiple" ? "checkbox" : "radio",
          name: `correct-${i}`,
          checked: q.correct.includes(j),
          "aria-label": `Answer ${j + 1} is correct`,
          onchange: (event) => {
            if (q.kind === "multiple") {
              q.correct = event.target.checked ? [...new Set([...q.correct, j])].sort((a, b) => a - b) : q.correct.filter((c) => c !== j);
            } else {
              q.correct = [j];
            }
          },
        }), h("span", { "aria-hidden": "true" }, "Correct"));
      return h("div", { class: "choice-row" },
        tintedShape(j),
        h("div", {},
          h("label", { for: fieldId(path), class: "visually-hidden" }, `Question ${i + 1}, ${word} ${j + 1}`),
          control("input", path, {
            type: "text", value: choice.text, maxlength: "120", readonly: q.kind === "true_false",
            placeholder: ordering ? `${ordinalWord(j)} in the right order` : `Answer ${j + 1}`,
            oninput: (event) => { choice.text = event.target.value; },
          }),
          errorFor(path)),
        h("div", { class: "actions", style: "margin:0" },
          correctControl,
          q.kind === "true_false" ? null : h("button", {
            type: "button", class: "secondary", disabled: q.choices.length <= (ordering ? MIN_ORDERING_ITEMS : MIN_CHOICES),
            "aria-label": `Remove ${word} ${j + 1} of question ${i + 1}`,
            onclick: () => {
              q.choices.splice(j, 1);
              q.correct = q.correct.filter((c) => c !== j).map((c) => (c > j ? c - 1 : c));
              normaliseKind(q);
              draw(fieldId(`${base}.choices.${Math.max(0, j - 1)}.text`));
            },
          }, "Remove")));
    });
    const move = (delta) => {
      const target = i + delta;
      [quiz.questions[i], quiz.questions[target]] = [quiz.questions[target], quiz.questions[i]];
      draw(fieldId(`questions.${target}.text`));
    };
    return control("fieldset", base, { class: "question" },
      h("legend", {}, `Question ${i + 1}`),
      errorFor(base),
      h("label", { for: fieldId(`${base}.text`) }, info ? "Slide text" : "Question text"),
      control("textarea", `${base}.text`, { maxlength: "300", oninput: (event) => { q.text = event.target.value; } }, q.text),
      errorFor(`${base}.text`),
      pictureField(q, "image", `${base}.image`, `Picture of question ${i + 1}`),
      h("div", { class: "grid-2" },
        h("div", {},
          h("label", { for: fieldId(`${base}.kind`) }, "Kind"),
          control("select", `${base}.kind`, {
            onchange: (event) => { q.kind = event.target.value; normaliseKind(q); draw(fieldId(`${base}.kind`)); },
          }, KINDS.map(([value, label]) => h("option", { value, selected: q.kind === value }, label))),
          errorFor(`${base}.kind`)),
        h("div", {},
          h("label", { for: fieldId(`${base}.time_limit_seconds`) }, "Time limit (seconds)"),
          control("input", `${base}.time_limit_seconds`, {
            type: "number", inputmode: "numeric", min: "5", max: "240", step: "1", value: String(q.time_limit_seconds ?? ""),
            oninput: (event) => { q.time_limit_seconds = event.target.value === "" ? null : Number(event.target.value); },
          }),
          errorFor(`${base}.time_limit_seconds`))),
      info ? h("p", { class: "hint" }, "An info slide shows its text on the big screen for its time limit (or until you continue); players answer nothing.") : null,
      info ? null : h("div", { class: "grid-2" },
        q.kind === "poll"
          ? h("p", { class: "hint" }, "A poll scores no points.")
          : h("div", {},
            h("label", { for: fieldId(`${base}.points`) }, "Points"),
            control("select", `${base}.points`, { onchange: (event) => { q.points = event.target.value; } },
              POINTS.map(([value, label]) => h("option", { value, selected: q.points === value }, label))),
            errorFor(`${base}.points`)),
        h("div", {},
          h("label", { for: fieldId(`${base}.read_seconds`) }, "Reading time before answers open (seconds)"),
          control("input", `${base}.read_seconds`, {
            type: "number", inputmode: "numeric", min: "0", max: "30", step: "1", value: String(q.read_seconds ?? 5),
            oninput: (event) => { q.read_seconds = event.target.value === "" ? null : Number(event.target.value); },
          }),
          errorFor(`${base}.read_seconds`))),
      PICKING.has(q.kind) ? control("div", `${base}.choices`, { role: "group", "aria-label": `Answers of question ${i + 1}` },
        h("h3", {}, "Answers"),
        q.kind === "poll" ? h("p", { class: "hint" }, "A poll has no right answer.") : h("p", { class: "hint" }, q.kind === "multiple" ? "Tick every right answer." : "Pick the right answer."),
        choiceInputs) : null,
      ordering ? control("div", `${base}.choices`, { role: "group", "aria-label": `Items of question ${i + 1}` },
        h("h3", {}, "Items, in the right order"),
        h("p", { class: "hint" }, "List 3 to 6 items in the right order, first at the top. Players see them shuffled; only exactly this order scores."),
        choiceInputs) : null,
      q.kind === "type_answer" ? acceptedBlock(q, i) : null,
      q.kind === "slider" ? sliderBlock(q, i) : null,
      errorFor(`${base}.choices`),
      errorFor(`${base}.correct`),
      h("div", { class: "actions" },
        PICKING.has(q.kind) && q.kind !== "true_false" || ordering ? h("button", {
          type: "button", class: "secondary", disabled: q.choices.length >= MAX_CHOICES,
          onclick: () => { q.choices.push({ text: "" }); draw(fieldId(`${base}.choices.${q.choices.length - 1}.text`)); },
        }, ordering ? `Add an item to question ${i + 1}` : `Add an answer to question ${i + 1}`) : null,
        h("button", { type: "button", class: "secondary", disabled: i === 0, onclick: () => move(-1), "aria-label": `Move question ${i + 1} up` }, "Move up"),
        h("button", { type: "button", class: "secondary", disabled: i === quiz.questions.length - 1, onclick: () => move(1), "aria-label": `Move question ${i + 1} down` }, "Move down"),
        h("button", {
          type: "button", class: "danger", disabled: quiz.questions.length <= 1, "aria-label": `Remove question ${i + 1}`,
          onclick: () => { quiz.questions.splice(i, 1); draw(fieldId(`questions.${Math.max(0, i - 1)}.text`)); },
        }, "Remove question")));
  }

  function acceptedBlock(q, i) {
    const base = `questions.${i}`;
    return control("div", `${base}.accepted`, { role: "group", "aria-label": `Accepted answers of question ${i + 1}` },
      h("h3", {}, "Accepted answers"),
      h("p", { class: "hint" }, "Any of these is right. Case, accents and spaces do not matter: “Zürich” also accepts “zurich” and “ZU RICH”. Up to 10, each up to 60 characters."),
      q.accepted.map((text, j) => {
        const path = `${base}.accepted.${j}`;
        return h("div", { class: "choice-row accepted-row" },
          h("span", { "aria-hidden": "true" }, "✓"),
          h("div", {},
            h("label", { for: fieldId(path), class: "visually-hidden" }, `Question ${i + 1}, accepted answer ${j + 1}`),
            control("input", path, { type: "text", value: text, maxlength: "60", placeholder: `Accepted answer ${j + 1}`, oninput: (event) => { q.accepted[j] = event.target.value; } }),
            errorFor(path)),
          h("button", {
            type: "button", class: "secondary", disabled: q.accepted.length <= 1,
            "aria-label": `Remove accepted answer ${j + 1} of question ${i + 1}`,
            onclick: () => { q.accepted.splice(j, 1); draw(fieldId(`${base}.accepted.${Math.max(0, j - 1)}`)); },
          }, "Remove"));
      }),
      h("div", { class: "actions" }, h("button", {
        type: "button", class: "secondary", disabled: q.accepted.length >= MAX_ACCEPTED,
        onclick: () => { q.accepted.push(""); draw(fieldId(`${base}.accepted.${q.accepted.length - 1}`)); },
      }, `Add an accepted answer to question ${i + 1}`)));
  }

  function sliderBlock(q, i) {
    const base = `questions.${i}.slider`;
    const sl = q.slider;
    const number = (name, label, attrs = {}) => h("div", {},
      h("label", { for: fieldId(`${base}.${name}`) }, label),
      control("input", `${base}.${name}`, {
        type: "number", inputmode: "decimal", step: "any", ...attrs, value: sl[name] === null || sl[name] === undefined ? "" : String(sl[name]),
        oninput: (event) => { sl[name] = event.target.value === "" ? null : Number(event.target.value); },
      }),
      errorFor(`${base}.${name}`));
    return control("div", base, { role: "group", "aria-label": `Slider of question ${i + 1}` },
      h("h3", {}, "Slider"),
      h("p", { class: "hint" }, "Players pick a number from the smallest to the largest, in steps. Within the tolerance of the right number is right; a little further off still earns some points."),
      h("div", { class: "grid-2" },
        number("min", "Smallest number"),
        number("max", "Largest number"),
        number("step", "Step", { min: "0" }),
        number("answer", "Right number"),
        number("tolerance", "Tolerance (still right this far off)", { min: "0" }),
        h("div", {},
          h("label", { for: fieldId(`${base}.unit`) }, "Unit (optional)"),
          control("input", `${base}.unit`, { type: "text", value: sl.unit || "", maxlength: "12", placeholder: "km, %, °C", oninput: (event) => { sl.unit = event.target.value; } }),
          errorFor(`${base}.unit`))),
      errorFor(base));
  }

  function settingsBlock() {
    const st = quiz.settings;
    const number = (name, label, attrs, empty) => [
      h("label", { for: fieldId(`settings.${name}`) }, label),
      control("input", `settings.${name}`, {
        type: "number", inputmode: "numeric", step: "1", ...attrs, value: st[name] === null || st[name] === undefined ? "" : String(st[name]),
        oninput: (event) => { st[name] = event.target.value === "" ? empty : Number(event.target.value); },
      }),
      errorFor(`settings.${name}`)];
    return control("fieldset", "settings", { class: "settings" },
      h("legend", {}, "Game settings"),
      h("label", { class: "check" },
        h("input", { type: "checkbox", id: fieldId("settings.streak_bonus"), checked: Boolean(st.streak_bonus), onchange: (event) => { st.streak_bonus = event.target.checked; } }),
        " Streak bonus: extra points for right answers in a row (100 more each time, up to 500)"),
      h("label", { class: "check" },
        h("input", { type: "checkbox", id: fieldId("settings.images_on_phones"), checked: Boolean(st.images_on_phones), onchange: (event) => { st.images_on_phones = event.target.checked; } }),
        " Show pictures on players’ phones too (otherwise only the big screen shows them)"),
      h("div", { class: "grid-2" },
        h("div", {}, number("leaderboard_size", "Players on the leaderboard", { min: "1", max: "50" }, 5)),
        h("div", {}, number("get_ready_seconds", "“Get ready” countdown before the first question (seconds)", { min: "0", max: "30" }, 0))),
      h("p", { class: "hint", id: "auto-advance-hint" }, "Leave empty to move on yourself; otherwise the answers and the leaderboard move on after this many seconds."),
      number("auto_advance_seconds", "Move on by itself after (seconds)", { min: "3", max: "120", "aria-describedby": "auto-advance-hint" }, null));
  }

  function draw(focusId) {
    document.title = `${id ? "Edit" : "New"} quiz · PartyQuiz`;
    const summary = errors.size
      ? h("div", { class: "notice", role: "alert", id: "error-summary" },
        h("p", {}, `${errors.size === 1 ? "1 problem" : `${errors.size} problems`} to fix before saving:`),
        h("ul", {}, [...errors.entries()].map(([path, message]) => h("li", {},
          h("a", { href: `#${fieldId(path)}`, onclick: (event) => { event.preventDefault(); document.getElementById(fieldId(path))?.focus(); } }, `${describePath(path)}: ${message}`)))))
      : null;
    const form = h("form", { novalidate: true, id: "quiz-form" },
      h("label", { for: fieldId("title") }, "Title"),
      control("input", "title", { type: "text", value: quiz.title, maxlength: "120", required: true, oninput: (event) => { quiz.title = event.target.value; } }),
      errorFor("title"),
      h("label", { for: fieldId("description") }, "Description (optional)"),
      control("textarea", "description", { maxlength: "500", oninput: (event) => { quiz.description = event.target.value; } }, quiz.description || ""),
      errorFor("description"),
      pictureField(quiz, "cover", "cover", "Cover picture (shown while players join)"),
      errorFor("questions"),
      quiz.questions.map(questionBlock),
      h("div", { class: "actions" },
        h("button", {
          type: "button", class: "secondary", disabled: quiz.questions.length >= 100,
          onclick: () => {
            quiz.questions.push(copy(NEW_QUESTION));
            draw(fieldId(`questions.${quiz.questions.length - 1}.text`));
          },
        }, "Add a question")),
      settingsBlock(),
      h("p", { class: "form-error", role: "alert", id: "form-error", tabindex: "-1" }, formMessage),
      h("p", { class: "form-status", role: "status", id: "form-status" }, statusMessage),
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "big", id: "save" }, "Save quiz")));
    form.addEventListener("submit", (event) => { event.preventDefault(); save(); });
    replace(main,
      h("h1", {}, id ? `Edit “${quiz.title || "untitled"}”` : "New quiz"),
      h("p", {}, h("a", { href: "/host" }, "← Back to your quizzes")),
      id ? h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", onclick: () => download(`/api/quizzes/${id}/export`, "quiz.json") }, "Export JSON"),
        h("button", {
          type: "button", class: "secondary",
          onclick: async () => {
            const copyRecord = await call(`/api/quizzes/${id}/duplicate`, { method: "POST" });
            navigate(`/host/quizzes/${copyRecord.id}`);
          },
        }, "Duplicate")) : null,
      summary,
      form);
    if (focusId) document.getElementById(focusId)?.focus();
  }

  function describePath(path) {
    const parts = path.split(".");
    const words = [];
    for (let k = 0; k < parts.length; k += 1) {
      const part = parts[k];
      if (part === "questions" && parts[k + 1] !== undefined) { words.push(`Question ${Number(parts[k + 1]) + 1}`); k += 1; }
      else if (part === "choices" && parts[k + 1] !== undefined) { words.push(`answer ${Number(parts[k + 1]) + 1}`); k += 1; }
      else if (part === "accepted" && parts[k + 1] !== undefined) { words.push(`accepted answer ${Number(parts[k + 1]) + 1}`); k += 1; }
      else if (part === "answer") words.push("right number");
      else if (part === "time_limit_seconds") words.push("time limit");
      else if (part === "read_seconds") words.push("reading time");
      else if (part === "image") words.push("picture");
      else if (part === "cover") words.push("Cover picture");
      else if (part === "settings") words.push("Game settings");
      else if (part === "text") words.push(words.length ? "text" : "Text");
      else words.push(part.replace(/_/g, " "));
    }
    const text = words.join(", ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function friendly(message) {
    // The API's messages are precise but written for developers; say the common ones plainly.
    if (message === "String should have at least 1 character") return "This cannot be empty.";
    const atLeast = /^Input should be greater than or equal to (\d+)$/.exec(message);
    if (atLeast) return `Use ${atLeast[1]} or more.`;
    const atMost = /^Input should be less than or equal to (\d+)$/.exec(message);
    if (atMost) return `Use ${atMost[1]} or less.`;
    return message;
  }

  function placeErrors(items) {
    const placed = new Map();
    for (const raw of items) {
      const item = { path: raw.path, message: friendly(raw.message) };
      let path = item.path.replace(/^body\.?/, "") || "title";
      // The nearest field that exists on the form takes the message.
      while (path && !document.getElementById(fieldId(path))) {
        path = path.includes(".") ? path.slice(0, path.lastIndexOf(".")) : "";
      }
      if (!path) {
        formMessage = formMessage ? `${formMessage} ${item.message}` : item.message;
        continue;
      }
      placed.set(path, placed.has(path) ? `${placed.get(path)}; ${item.message}` : item.message);
    }
    return placed;
  }

  async function save() {
    errors = new Map();
    formMessage = "";
    statusMessage = "";
    const button = document.getElementById("save");
    button.disabled = true;
    button.textContent = "Saving…";
    try {
      const record = id
        ? await call(`/api/quizzes/${id}`, { method: "PUT", json: quiz })
        : await call("/api/quizzes", { method: "POST", json: quiz });
      quiz = copy(record.quiz);
      quiz.settings = { ...DEFAULT_SETTINGS, ...(quiz.settings || {}) };
      saved = JSON.stringify(quiz);
      if (!id) {
        id = record.id;
        window.history.replaceState(null, "", `/host/quizzes/${id}`);
      }
      statusMessage = `Saved at ${new Date().toLocaleTimeString()}.`;
      draw();
      announce("Quiz saved.");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 401) return;
      draw();
      errors = error.status === 422 && error.errors.length ? placeErrors(error.errors) : new Map();
      if (!errors.size && !formMessage) formMessage = error.message;
      draw();
      // The summary lists every problem with a link to its field; the messages sit by the fields.
      const summary = document.getElementById("error-summary");
      if (summary) {
        summary.setAttribute("tabindex", "-1");
        summary.focus();
      } else document.getElementById("form-error")?.focus();
    }
  }

  draw();
}
