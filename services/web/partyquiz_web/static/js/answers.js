// The phone's answer inputs beyond picking choices: a text field (type answer), a slider with
// big − and + buttons, and a list to put in order (drag an item, or use its ▲ ▼ buttons, or
// focus it and press the arrow keys). Each reports the draft through a callback and can be
// locked; none of them talks to the game service or knows what is right.

import { h, replace, announce } from "./dom.js";
import { shapeIcon } from "./shapes.js";

export const TYPED_MAX = 60;

/** Decimals a slider's numbers are shown with: those of its `min` and its `step`. */
export function sliderDecimals(slider) {
  const decimals = (n) => {
    const text = String(n);
    if (text.includes("e-")) return Number(text.split("e-")[1]);
    return text.includes(".") ? text.split(".")[1].length : 0;
  };
  return Math.min(6, Math.max(decimals(slider.min), decimals(slider.step)));
}

/** A number on `slider`'s scale as people read it, with the slider's unit. */
export function formatNumber(value, slider) {
  const text = Number(value).toFixed(sliderDecimals(slider));
  return slider.unit ? `${text} ${slider.unit}` : text;
}

/** The value on the scale nearest to `value`. */
export function snap(value, slider) {
  const steps = Math.round((slider.max - slider.min) / slider.step);
  const k = Math.min(steps, Math.max(0, Math.round((value - slider.min) / slider.step)));
  return Number((slider.min + k * slider.step).toFixed(sliderDecimals(slider)));
}

/** Where a slider starts: the step nearest the middle. */
export function middle(slider) {
  return snap((slider.min + slider.max) / 2, slider);
}

/** A text field and its send button; `onSubmit(text)` when sent (Enter or the button). */
export function typedAnswer({ text, onInput, onSubmit }) {
  const input = h("input", {
    id: "typed-answer", type: "text", class: "typed-input", value: text, maxlength: String(TYPED_MAX),
    autocomplete: "off", autocapitalize: "off", spellcheck: "false", enterkeyhint: "send",
    "aria-describedby": "kind-hint",
    oninput: (event) => onInput(event.target.value),
  });
  input.setAttribute("autocorrect", "off");
  const form = h("form", { class: "typed", id: "typed", novalidate: true },
    h("label", { for: "typed-answer", class: "visually-hidden" }, "Your answer"),
    input,
    h("button", { type: "submit", class: "big lock-in", id: "lock-in" }, "Send my answer"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value.trim()) onSubmit(input.value);
  });
  return form;
}

/** A slider with its number shown large, − and + buttons a step each, and its two ends. */
export function sliderAnswer(slider, { value, onChange }) {
  const output = h("output", { class: "slider-value", id: "slider-value", for: "slider-input", "aria-live": "off" }, formatNumber(value, slider));
  const range = h("input", {
    type: "range", id: "slider-input", class: "slider-input",
    min: String(slider.min), max: String(slider.max), step: String(slider.step), value: String(value),
    "aria-describedby": "kind-hint", "aria-valuetext": formatNumber(value, slider),
    oninput: (event) => onChange(snap(Number(event.target.value), slider)),
  });
  const nudge = (direction) => {
    const current = Number(range.value);
    onChange(snap(current + direction * slider.step, slider));
  };
  return h("div", { class: "slider-box", id: "slider" },
    output,
    h("div", { class: "slider-row" },
      h("button", { type: "button", class: "step-button", id: "slider-less", "aria-label": "One step less", onclick: () => nudge(-1) }, "−"),
      h("label", { for: "slider-input", class: "visually-hidden" }, "Your answer"),
      range,
      h("button", { type: "button", class: "step-button", id: "slider-more", "aria-label": "One step more", onclick: () => nudge(1) }, "+")),
    h("p", { class: "slider-ends", "aria-hidden": "true" },
      h("span", {}, formatNumber(slider.min, slider)), h("span", {}, formatNumber(slider.max, slider))));
}

/** Show `value` on a slider drawn by `sliderAnswer`. */
export function showSliderValue(slider, value) {
  const range = document.getElementById("slider-input");
  const output = document.getElementById("slider-value");
  if (!range || !output) return;
  range.value = String(value);
  range.setAttribute("aria-valuetext", formatNumber(value, slider));
  output.textContent = formatNumber(value, slider);
}

/**
 * The items of an ordering question as a list to put in order; `order` holds indices into
 * `choices` (as shown), first at the top. `onChange(order)` after every move.
 */
export function orderingAnswer(choices, order, { onChange }) {
  const list = h("ol", { class: `order n${choices.length}`, id: "order", "aria-label": "Your order, first at the top", "aria-describedby": "kind-hint" });
  let locked = false;

  function current() {
    return [...list.children].map((li) => Number(li.dataset.index));
  }

  function move(index, delta, { focus = "item" } = {}) {
    const now = current();
    const from = now.indexOf(index);
    const to = from + delta;
    if (locked || to < 0 || to >= now.length) return;
    now.splice(from, 1);
    now.splice(to, 0, index);
    draw(now);
    onChange(now);
    announce(`${choices[index]}: moved to place ${to + 1} of ${now.length}.`);
    const li = list.querySelector(`[data-index="${index}"]`);
    const target = focus === "item" ? li : li.querySelector(delta < 0 ? ".move-up" : ".move-down");
    (target && !target.disabled ? target : li).focus();
  }

  function renumber() {
    [...list.children].forEach((li, pos) => {
      li.querySelector(".pos").textContent = String(pos + 1);
      li.setAttribute("aria-label", `${pos + 1}: ${choices[Number(li.dataset.index)]}`);
      li.querySelector(".move-up").disabled = locked || pos === 0;
      li.querySelector(".move-down").disabled = locked || pos === list.children.length - 1;
    });
  }

  function dragFrom(li, event) {
    if (locked || event.button > 0 || event.target.closest("button")) return;
    event.preventDefault();
    li.classList.add("dragging");
    const before = current().join(",");
    // Followed on the document: moving the item in the list would end a pointer capture.
    const pointer = event.pointerId;
    const follow = (moveEvent) => {
      if (moveEvent.pointerId !== pointer) return;
      const rows = [...list.children];
      const over = rows.find((row) => {
        const box = row.getBoundingClientRect();
        return moveEvent.clientY >= box.top && moveEvent.clientY <= box.bottom
          && moveEvent.clientX >= box.left && moveEvent.clientX <= box.right;
      });
      if (!over || over === li) return;
      const overPos = rows.indexOf(over);
      const myPos = rows.indexOf(li);
      list.insertBefore(li, overPos > myPos ? over.nextSibling : over);
      renumber();
    };
    const drop = (upEvent) => {
      if (upEvent.pointerId !== pointer) return;
      li.classList.remove("dragging");
      document.removeEventListener("pointermove", follow);
      document.removeEventListener("pointerup", drop);
      document.removeEventListener("pointercancel", drop);
      const after = current();
      if (after.join(",") !== before) {
        onChange(after);
        announce(`${choices[Number(li.dataset.index)]}: moved to place ${after.indexOf(Number(li.dataset.index)) + 1} of ${after.length}.`);
      }
    };
    document.addEventListener("pointermove", follow);
    document.addEventListener("pointerup", drop);
    document.addEventListener("pointercancel", drop);
  }

  function draw(now) {
    replace(list, now.map((index) => {
      const text = choices[index];
      const li = h("li", {
        class: `order-item choice-${index}${text.length > 40 ? " long" : ""}`, tabindex: "0",
        dataset: { index: String(index) }, "aria-roledescription": "item to put in order",
        onkeydown: (event) => {
          if (event.altKey || event.ctrlKey || event.metaKey) return;
          if (event.key === "ArrowUp" || event.key === "ArrowDown") {
            event.preventDefault();
            move(index, event.key === "ArrowUp" ? -1 : 1, { focus: event.target === event.currentTarget ? "item" : "button" });
          }
        },
      },
      h("span", { class: "pos", "aria-hidden": "true" }),
      shapeIcon(index),
      h("span", { class: "text" }, text),
      h("span", { class: "moves" },
        h("button", { type: "button", class: "move move-up", "aria-label": `Move ${text} up`, onclick: () => move(index, -1, { focus: "button" }) }, "▲"),
        h("button", { type: "button", class: "move move-down", "aria-label": `Move ${text} down`, onclick: () => move(index, 1, { focus: "button" }) }, "▼")));
      li.addEventListener("pointerdown", (event) => dragFrom(li, event));
      return li;
    }));
    renumber();
  }

  draw(order);
  list.showOrder = (now) => {
    if (now.join(",") !== current().join(",")) draw(now);
  };
  list.setLocked = (value) => {
    locked = Boolean(value);
    list.classList.toggle("locked", locked);
    renumber();
  };
  return list;
}
