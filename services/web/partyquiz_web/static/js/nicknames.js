// Nickname suggestions for players who would rather not think of one: two friendly words, in
// the spirit of party games. Also counts a name's length the way people do (a joined emoji such
// as 👩‍💻 is one character), matching the game service's rule.

const FIRST = [
  "Happy", "Speedy", "Sunny", "Clever", "Brave", "Jolly", "Cosmic", "Lucky", "Mighty", "Quiet",
  "Fuzzy", "Golden", "Witty", "Bouncy", "Sneaky", "Dizzy", "Curious", "Nimble", "Breezy", "Zesty",
];
const SECOND = [
  "Panda", "Otter", "Comet", "Falcon", "Noodle", "Pickle", "Walrus", "Tiger", "Pebble", "Rocket",
  "Badger", "Mango", "Koala", "Puffin", "Waffle", "Gecko", "Yeti", "Dragon", "Turnip", "Lemur",
];

function pick(list) {
  const bytes = new Uint32Array(1);
  window.crypto.getRandomValues(bytes);
  return list[bytes[0] % list.length];
}

/** Two random words ("Sunny Otter"), never the same as `previous`. */
export function suggestNickname(previous = "") {
  for (;;) {
    const name = `${pick(FIRST)} ${pick(SECOND)}`;
    if (name !== previous) return name;
  }
}

/** The number of characters as a person counts them (grapheme clusters). */
export function graphemeCount(text) {
  if (window.Intl && Intl.Segmenter) {
    return [...new Intl.Segmenter(undefined, { granularity: "grapheme" }).segment(text)].length;
  }
  return [...text].length;
}
