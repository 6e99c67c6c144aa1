// Evaluates field expressions the way JavaScript does, for the differential test.
//
//   node evaluate.js USERS.ndjson EXPRESSIONS.json > CELLS.json
//
// EXPRESSIONS.json is an array of JavaScript expression texts over `user` (written with
// optional member access and calls, which is how userport evaluates them). The output is an
// array with, for each user, an array with each expression's rendered cell: undefined and
// null empty, strings as they are, numbers and booleans as String() prints them, objects and
// arrays as JSON.stringify writes them. Where JavaScript throws, the cell is empty.
"use strict";
const fs = require("fs");

// String.prototype.toWellFormed arrived in Node.js 20; older ones get the same behaviour.
function wellFormed(s) {
  if (typeof s.toWellFormed === "function") return s.toWellFormed();
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
}

const [usersPath, expressionsPath] = process.argv.slice(2);
const users = fs
  .readFileSync(usersPath, "utf8")
  .split("\n")
  .filter((line) => line.trim() !== "")
  .map((line) => JSON.parse(line));
const texts = JSON.parse(fs.readFileSync(expressionsPath, "utf8"));
// userport's strings are always well-formed Unicode: a lone half of a surrogate pair (cut
// out of an emoji) is U+FFFD at once. JSON.stringify is the one place where that shows
// before rendering, so it sees strings the same way here.
const wellFormedJSON = {
  stringify: (value) =>
    JSON.stringify(value, (key, x) => (typeof x === "string" ? wellFormed(x) : x)),
};
const functions = texts.map(
  (text) => new Function("user", "JSON", `"use strict"; return (${text});`),
);

function render(value) {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return wellFormed(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return wellFormedJSON.stringify(value);
}

const out = users.map((user) =>
  functions.map((f) => {
    try {
      return render(f(user, wellFormedJSON));
    } catch (e) {
      return "";
    }
  }),
);
process.stdout.write(JSON.stringify(out));
