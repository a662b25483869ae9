// Answer choices are told apart by shape AND colour (colours alone fail colour-blind players).
// Colours live in partyquiz.css (--choice-N-bg/fg); this module draws the shapes.

const SVG_NS = "http://www.w3.org/2000/svg";

export const SHAPE_NAMES = ["triangle", "diamond", "circle", "square", "star", "hexagon"];

const PATHS = {
  triangle: "M12 2 L23 21 L1 21 Z",
  diamond: "M12 1 L23 12 L12 23 L1 12 Z",
  circle: "M12 2 A10 10 0 1 1 11.99 2 Z",
  square: "M3 3 H21 V21 H3 Z",
  star: "M12 1.5 L15 8.8 L22.9 9.4 L16.9 14.6 L18.7 22.3 L12 18.2 L5.3 22.3 L7.1 14.6 L1.1 9.4 L9 8.8 Z",
  hexagon: "M6.5 2.5 H17.5 L23 12 L17.5 21.5 H6.5 L1 12 Z",
};

/** An inline SVG of choice `index`'s shape, hidden from assistive technology. */
export function shapeIcon(index) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", `shape shape-${SHAPE_NAMES[index]}`);
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", PATHS[SHAPE_NAMES[index]]);
  path.setAttribute("fill", "currentColor");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "0.5");
  svg.append(path);
  return svg;
}

/** A shape icon tinted with the choice's colour (for use on a neutral background). */
export function tintedShape(index) {
  const svg = shapeIcon(index);
  svg.style.color = `var(--choice-${index}-bg)`;
  return svg;
}
