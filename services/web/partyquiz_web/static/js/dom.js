// Small DOM helpers shared by the player and host pages: element building, announcements.
// Text always goes in through textContent, never innerHTML, so user content cannot inject markup.

/** Build an element: h("button", {class: "x", onclick: fn, "aria-label": "..."}, child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace everything inside `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Say `text` to screen-reader users through the page's polite live region. */
export function announce(text, { assertive = false } = {}) {
  const region = document.getElementById(assertive ? "alert" : "announcer");
  if (!region) return;
  // Clearing first makes repeating the same sentence audible again.
  region.textContent = "";
  window.setTimeout(() => { region.textContent = text; }, 30);
}

/** Format a number of points with thousands separators. */
export function pts(n) {
  return Number(n).toLocaleString("en-US");
}

/** "1st", "2nd", "3rd", "4th" ... */
export function ordinal(n) {
  const rem100 = n % 100;
  if (rem100 >= 11 && rem100 <= 13) return `${n}th`;
  return `${n}${{ 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th"}`;
}

/** Move keyboard focus to the main heading of a freshly drawn view. */
export function focusHeading(root) {
  const heading = root.querySelector("h1, h2");
  if (!heading) return;
  heading.setAttribute("tabindex", "-1");
  heading.focus({ preventScroll: false });
}
