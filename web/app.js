// The matcalc page: reads the form, asks the server's JSON API, shows the answer.
// No framework and no network beyond this server: everything it loads is in the binary.
"use strict";

const $ = (id) => document.getElementById(id);

const EXAMPLES = [
  { expr: "½‖WᵀWx − x‖²", wrt: "W", decl: "", lets: "", claim: "W(zxᵀ + xzᵀ)" },
  {
    expr: "−c − D/2 log|K| − ½ tr(K⁻¹YYᵀ)", wrt: "X", decl: "", lets: "K = αXXᵀ + β⁻¹I",
    claim: "α/2 ((K⁻ᵀ)²YYᵀ + YYᵀ(K⁻ᵀ)²)X − DαK⁻¹X",
  },
  {
    expr: "½‖W₂ swish(z₁) + b₂ − y‖²", wrt: "W₁,b₁,W₂,b₂", decl: "", lets: "z₁ = W₁x + b₁",
    claim: "",
  },
];

// Symbols a person rarely has on a keyboard; the REPL's escapes type the same ones.
const PALETTE = ["ᵀ", "⁻¹", "‖", "²", "½", "⊙", "∘", "−", "α", "β", "λ", "σ", "Σ", "ℓ",
  "tr(", "det(", "log|", "𝟙"];

let escapes = [];          // [["\\alpha", "α"], ...], from /api/escapes
let generation = 0;        // the newest request; older answers are dropped
let inFlight = null;       // AbortController of the running request
let lastFocused = null;    // where palette symbols go
let codeText = "";
// The generated module for each backend of the last answer.
let codes = {};

// The page's state, for people (styles) and for the browser test: `busy` while a request
// runs, then `done` or `error`; `answers` counts the requests finished.
function setState(state) {
  document.body.dataset.state = state;
  if (state === "done" || state === "error") {
    document.body.dataset.answers = String(Number(document.body.dataset.answers || 0) + 1);
  }
}

function lines(text) {
  return text.split("\n").map((line) => line.trim()).filter((line) => line.length > 0);
}

function request() {
  const body = {
    expr: $("expr").value,
    wrt: $("wrt").value.trim(),
    decl: lines($("decl").value),
    let: lines($("lets").value),
    order: Number($("order").value),
    check: $("check").checked,
  };
  if ($("notation").value) body.form = $("notation").value;
  if ($("sizes").value.trim()) body.sizes = $("sizes").value.trim();
  return body;
}

async function post(endpoint, body, signal) {
  const response = await fetch("/api/" + endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
  let json;
  try { json = await response.json(); } catch (_) { json = { error: "the server sent no JSON (HTTP " + response.status + ")" }; }
  return { ok: response.ok, status: response.status, json };
}

// ---- rendering ---------------------------------------------------------------------

function tex(latex, element, display) {
  if (window.katex) {
    try {
      window.katex.render(latex, element, { displayMode: display, throwOnError: true, output: "htmlAndMathml" });
      return;
    } catch (_) { /* fall through to the plain text */ }
  }
  element.textContent = latex;
}

const SUBSCRIPTS = { "₀": "0", "₁": "1", "₂": "2", "₃": "3", "₄": "4", "₅": "5", "₆": "6", "₇": "7", "₈": "8", "₉": "9" };
const GREEK = { α: "\\alpha", β: "\\beta", γ: "\\gamma", δ: "\\delta", λ: "\\lambda", μ: "\\mu", σ: "\\sigma", Σ: "\\Sigma", θ: "\\theta", ℓ: "\\ell" };

// A node or variable name (z₁, α) in LaTeX.
function nameTex(name) {
  let base = "", sub = "";
  for (const ch of name) {
    if (SUBSCRIPTS[ch] !== undefined) sub += SUBSCRIPTS[ch];
    else base += GREEK[ch] !== undefined ? GREEK[ch] + " " : ch;
  }
  base = base.trim();
  return sub ? base + "_{" + sub + "}" : base;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function verdictElement(check, label) {
  const box = el("div", "verdict");
  let text;
  if (check.passed) {
    box.classList.add("ok");
    text = "check: ok (" + check.trials + " random trials, max rel. error " + check.max_rel_error.toExponential(1) + ")";
  } else if (check.inconclusive) {
    box.classList.add("unsure");
    text = "check: inconclusive (" + check.reason + ")";
  } else if (check.unreadable) {
    box.classList.add("bad");
    text = "check: FAILED (" + check.reason + ")";
  } else {
    box.classList.add("bad");
    text = "check: FAILED (relative error " + Number(check.rel_error).toExponential(1) + ")";
  }
  box.append(el("span", "mark", check.passed ? "✓" : check.inconclusive ? "?" : "✗"));
  box.append(el("span", "verdict-text", (label ? label + ": " : "") + text));
  if (!check.passed && check.counterexample) box.append(counterexample(check.counterexample));
  return box;
}

// The random instance that refutes a derivative: long, so folded.
function counterexample(text) {
  const details = el("details", "counterexample-box");
  details.append(el("summary", "", "the counterexample"));
  details.append(el("pre", "counterexample", text));
  return details;
}

function showAnswer(kind, json, input) {
  $("placeholder").hidden = true;
  $("answer").hidden = false;
  const render = json.render || {};
  const results = json.results || [json];
  // The equation: the aligned block with its where lines, as the CLI's --format latex.
  const equation = $("equation");
  tex(render.latex || json.latex, equation, true);
  // The verdicts have their own boxes below; the text keeps the equations and where lines.
  $("unicode").textContent = (render.text || "").split("\n")
    .filter((line) => !/^(\S+: )?check: /.test(line)).join("\n").trim();
  // Each result's left-hand side as the text writes it (∂/∂W, ∂vec(F)/∂vec(X), dF, …):
  // the text begins with one equation per result, in order.
  const textLines = (render.text || "").split("\n");
  const lhs = results.map((result, index) => {
    const line = textLines[index] || "";
    return line.includes(" = ") ? line.slice(0, line.indexOf(" = ")) : "∂/∂" + result.wrt;
  });
  const verdicts = $("verdicts");
  verdicts.replaceChildren();
  results.forEach((result, index) => {
    if (result.check) verdicts.append(verdictElement(result.check, results.length > 1 ? lhs[index] : ""));
  });
  // One row per variable: its shape and the compute form the code uses.
  const facts = $("facts");
  facts.replaceChildren();
  const head = el("tr");
  for (const title of [kind === "simplify" ? "" : "derivative", "shape", "compute form"]) head.append(el("th", "", title));
  facts.append(head);
  results.forEach((result, index) => {
    const row = el("tr");
    row.append(el("td", "mono", kind === "simplify" ? "" : lhs[index]));
    row.append(el("td", "", result.shape.join("×") + (result.gradient ? " (symmetric)" : "")));
    row.append(el("td", "mono", result.compute));
    facts.append(row);
  });
  $("limit-note").hidden = results.every((result) => result.saturated);
  codes = { numpy: render.numpy || "", jax: render.jax || "", torch: render.torch || "" };
  showCode();
  $("result").dataset.kind = kind;
  if (kind === "simplify") {
    $("graph").replaceChildren(el("p", "muted", "Give a variable to see the computation graph and the backward pass."));
    $("steps").replaceChildren();
  }
  $("go").textContent = kind === "simplify" ? "Simplify" : "Differentiate";
}

function showExplanation(json) {
  const render = json.render || {};
  const graph = $("graph");
  // The SVG is matcalc's own drawing (src/explain/graph.rs), names escaped there.
  graph.innerHTML = render.svg || "";
  const steps = $("steps");
  steps.replaceChildren();
  const forward = el("div", "step-group");
  forward.append(el("h3", "", "Forward pass"));
  for (const node of json.nodes || []) {
    // Variables and constants are the leaves: the graph shows them; the steps are the operations.
    if (node.role === "variable" || node.role === "constant") continue;
    const row = el("div", "step");
    const math = el("div", "step-math");
    tex(nameTex(node.name) + " = " + node.latex, math, false);
    row.append(math, el("div", "step-note", node.shape + (node.let ? " · let" : "")));
    forward.append(row);
  }
  const backward = el("div", "step-group");
  backward.append(el("h3", "", "Backward pass"));
  const output = nameTex(json.output || "L");
  for (const step of json.backward || []) {
    const row = el("div", "step");
    const math = el("div", "step-math");
    tex("\\frac{\\partial " + output + "}{\\partial " + nameTex(step.node) + "} = " + step.latex, math, false);
    const rule = el("div", "step-rule");
    if (step.rule && step.rule.latex) tex(step.rule.latex, rule, false);
    else if (step.rule) rule.textContent = step.rule.words || String(step.rule);
    row.append(math, rule);
    backward.append(row);
  }
  steps.append(forward, backward);
  if (json.adjoint_checks) {
    const ok = json.adjoint_checks.filter((c) => c.check.passed).length;
    steps.append(el("p", "muted", "every adjoint checked against finite differences: " + ok + " of " + json.adjoint_checks.length + " pass"));
  }
}

// ---- errors with a caret under the input ---------------------------------------------

const ERROR_BOXES = ["expr", "wrt", "decl", "let", "claim", "request"];

function clearErrors() {
  for (const name of ERROR_BOXES) {
    const box = $("error-" + name);
    box.hidden = true;
    box.replaceChildren();
  }
  for (const id of ["expr", "wrt", "decl", "lets", "claim"]) $(id).classList.remove("invalid");
}

function showError(json, fallbackInput) {
  const input = json.input && ERROR_BOXES.includes(json.input) ? json.input : fallbackInput;
  const box = $("error-" + input);
  box.replaceChildren();
  box.append(el("div", "error-message", json.error));
  const source = json.source || "";
  if (source && Array.isArray(json.span)) {
    // Spans count characters (code points), as the server's diagnostics do.
    const chars = Array.from(source);
    const start = Math.min(json.span[0], chars.length);
    const end = Math.max(start + 1, Math.min(json.span[1], chars.length + 1));
    const echo = el("div", "echo");
    echo.append(document.createTextNode(chars.slice(0, start).join("")));
    const bad = el("span", "caret", chars.slice(start, end).join("") || " ");
    bad.title = json.error;
    echo.append(bad);
    echo.append(document.createTextNode(chars.slice(end).join("")));
    box.append(echo);
  }
  for (const hint of json.hints || []) box.append(el("div", "error-hint", "hint: " + hint));
  box.hidden = false;
  const field = { expr: "expr", wrt: "wrt", decl: "decl", let: "lets", claim: "claim" }[input];
  if (field) $(field).classList.add("invalid");
}

// ---- the round trip --------------------------------------------------------------------

async function compute() {
  const input = request();
  if (!input.expr.trim()) {
    generation++;
    clearErrors();
    $("answer").hidden = true;
    $("placeholder").hidden = false;
    $("result").classList.remove("stale");
    setState("idle");
    return;
  }
  const mine = ++generation;
  if (inFlight) inFlight.abort();
  inFlight = new AbortController();
  const signal = inFlight.signal;
  setState("busy");
  syncUrl(input);
  const kind = input.wrt ? "diff" : "simplify";
  try {
    const main = post(kind, Object.assign({ render: ["latex", "text", "numpy", "jax", "torch"] }, input), signal);
    const explained = input.wrt && input.order === 1
      ? post("explain", Object.assign({}, input, { check: false, form: undefined, sizes: undefined, render: ["svg"] }), signal)
      : null;
    const answer = await main;
    if (mine !== generation) return;
    clearErrors();
    if (!answer.ok) {
      showError(answer.json, "request");
      $("result").classList.add("stale");
      setState("error");
      return;
    }
    $("result").classList.remove("stale");
    showAnswer(kind, answer.json, input);
    if (explained) {
      const explanation = await explained;
      if (mine !== generation) return;
      if (explanation.ok) showExplanation(explanation.json);
      else {
        $("graph").replaceChildren(el("p", "muted", "No graph: " + explanation.json.error));
        $("steps").replaceChildren();
      }
    } else if (kind === "diff") {
      $("graph").replaceChildren(el("p", "muted", "The graph and the steps are drawn for first derivatives."));
      $("steps").replaceChildren();
    }
    setState("done");
  } catch (error) {
    if (error.name === "AbortError") return;
    if (mine !== generation) return;
    clearErrors();
    showError({ error: "cannot reach the matcalc server: " + error.message }, "request");
    $("result").classList.add("stale");
    setState("error");
  }
}

async function verifyClaim() {
  const input = request();
  const claim = $("claim").value;
  const out = $("claim-result");
  $("error-claim").hidden = true;
  $("claim").classList.remove("invalid");
  if (!claim.trim() || !input.wrt) return;
  out.hidden = false;
  out.replaceChildren(el("span", "muted", "verifying…"));
  const answer = await post("verify", Object.assign({}, input, { claim, steps: true, sizes: undefined, wrt: input.wrt.split(",")[0].trim() }));
  out.replaceChildren();
  if (!answer.ok) {
    out.hidden = true;
    showError(answer.json, "claim");
    return;
  }
  const json = answer.json;
  const box = el("div", "verdict " + (json.correct ? "ok" : json.check.inconclusive ? "unsure" : "bad"));
  box.append(el("span", "mark", json.correct ? "✓" : "✗"));
  box.append(el("span", "verdict-text", json.correct ? "the claim is correct" : json.check.inconclusive ? "inconclusive: " + json.check.reason : "the claim is wrong"));
  out.append(box);
  if (json.first_wrong_step) {
    out.append(el("div", "label step-label", "First wrong step"));
    // The diagnosis, then the failing instance behind it, folded like the counterexample.
    const at = json.first_wrong_step.indexOf("\nfailed:");
    out.append(el("div", "wrong-step", at < 0 ? json.first_wrong_step : json.first_wrong_step.slice(0, at)));
    if (at >= 0) out.append(counterexample(json.first_wrong_step.slice(at + 1)));
  }
  if (json.check.counterexample) out.append(counterexample(json.check.counterexample));
}

// ---- URL, typing, palette, tabs --------------------------------------------------------

function syncUrl(input) {
  const params = new URLSearchParams();
  params.set("expr", input.expr);
  if (input.wrt) params.set("wrt", input.wrt);
  for (const d of input.decl) params.append("decl", d);
  for (const l of input.let) params.append("let", l);
  if (input.order !== 1) params.set("order", String(input.order));
  if (input.form) params.set("form", input.form);
  if (input.sizes) params.set("sizes", input.sizes);
  if (!input.check) params.set("check", "0");
  const tab = document.querySelector('[data-tab][aria-selected="true"]');
  if (tab && tab.dataset.tab !== "graph") params.set("tab", tab.dataset.tab);
  history.replaceState(null, "", "?" + params.toString());
}

function loadUrl() {
  const params = new URLSearchParams(location.search);
  if (!params.has("expr")) return false;
  $("expr").value = params.get("expr");
  $("wrt").value = params.get("wrt") || "";
  $("decl").value = params.getAll("decl").join("\n");
  $("lets").value = params.getAll("let").join("\n");
  $("order").value = params.get("order") === "2" ? "2" : "1";
  $("notation").value = ["vec", "index"].includes(params.get("form")) ? params.get("form") : "";
  $("sizes").value = params.get("sizes") || "";
  $("check").checked = params.get("check") !== "0";
  if (params.has("claim")) { $("claim").value = params.get("claim"); $("claim-box").open = true; }
  if (["graph", "steps", "code"].includes(params.get("tab"))) selectTab(params.get("tab"));
  return true;
}

// `\alpha` becomes α once a character that cannot continue the name follows it.
function applyEscapes(field) {
  const value = field.value;
  const caret = field.selectionStart;
  let out = "", newCaret = caret, i = 0;
  while (i < value.length) {
    if (value[i] === "\\") {
      let j = i + 1;
      while (j < value.length && /[A-Za-z]/.test(value[j])) j++;
      const word = value.slice(i, j);
      const found = escapes.find(([escape]) => escape === word);
      if (found && j < value.length) {
        out += found[1];
        if (caret >= j) newCaret += found[1].length - word.length;
        i = j;
        continue;
      }
    }
    out += value[i];
    i++;
  }
  if (out !== value) {
    field.value = out;
    field.setSelectionRange(newCaret, newCaret);
  }
}

// Tab after `\alp` completes the escape, as in the REPL.
function completeEscape(field, event) {
  const head = field.value.slice(0, field.selectionStart);
  const match = /\\[A-Za-z]*$/.exec(head);
  if (!match) return;
  const candidates = escapes.filter(([escape]) => escape.startsWith(match[0]));
  if (candidates.length !== 1) return;
  event.preventDefault();
  const start = head.length - match[0].length;
  field.setRangeText(candidates[0][1], start, field.selectionStart, "end");
  field.dispatchEvent(new Event("input", { bubbles: true }));
}

function insertSymbol(symbol) {
  const field = lastFocused || $("expr");
  field.focus();
  field.setRangeText(symbol, field.selectionStart, field.selectionEnd, "end");
  field.dispatchEvent(new Event("input", { bubbles: true }));
}

function selectTab(name) {
  for (const tab of document.querySelectorAll("[data-tab]")) {
    const on = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", on ? "true" : "false");
    $("tab-" + tab.dataset.tab).hidden = !on;
  }
  if (location.search) {
    const params = new URLSearchParams(location.search);
    if (name === "graph") params.delete("tab"); else params.set("tab", name);
    history.replaceState(null, "", "?" + params.toString());
  }
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    const area = el("textarea");
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  const label = button.textContent;
  button.textContent = "copied";
  setTimeout(() => { button.textContent = label; }, 1200);
}

function showCode() {
  codeText = codes[$("code-backend").value] || "";
  $("code").textContent = codeText;
}

function download(text, name) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/x-python" }));
  const link = el("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function debounce(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

async function start() {
  try {
    const response = await fetch("/api/escapes");
    escapes = await response.json();
  } catch (_) { escapes = []; }

  const palette = $("palette");
  for (const symbol of PALETTE) {
    const button = el("button", "sym", symbol);
    button.type = "button";
    button.addEventListener("mousedown", (event) => event.preventDefault());
    button.addEventListener("click", () => insertSymbol(symbol));
    palette.append(button);
  }

  const later = debounce(compute, 350);
  for (const id of ["expr", "wrt", "decl", "lets", "claim"]) {
    const field = $(id);
    field.addEventListener("focus", () => { lastFocused = field; });
    field.addEventListener("keydown", (event) => { if (event.key === "Tab" && !event.shiftKey) completeEscape(field, event); });
    field.addEventListener("input", () => {
      applyEscapes(field);
      if (id !== "claim") later();
    });
  }
  $("order").addEventListener("change", compute);
  $("notation").addEventListener("change", compute);
  $("check").addEventListener("change", compute);
  $("form").addEventListener("submit", (event) => { event.preventDefault(); compute(); });
  $("verify").addEventListener("click", verifyClaim);
  $("claim").addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); verifyClaim(); } });
  for (const button of document.querySelectorAll("[data-example]")) {
    button.addEventListener("click", () => {
      const example = EXAMPLES[Number(button.dataset.example)];
      $("expr").value = example.expr;
      $("wrt").value = example.wrt;
      $("decl").value = example.decl;
      $("lets").value = example.lets;
      $("claim").value = example.claim;
      $("claim-result").hidden = true;
      compute();
    });
  }
  for (const tab of document.querySelectorAll("[data-tab]")) tab.addEventListener("click", () => selectTab(tab.dataset.tab));
  $("copy-unicode").addEventListener("click", (event) => copy($("unicode").textContent, event.target));
  $("copy-code").addEventListener("click", (event) => copy(codeText, event.target));
  $("download-code").addEventListener("click", () => {
    const backend = $("code-backend").value;
    download(codeText, backend === "numpy" ? "matcalc_derivative.py" : `matcalc_derivative_${backend}.py`);
  });
  $("code-backend").addEventListener("change", showCode);

  setState("idle");
  if (loadUrl()) compute();
}

document.addEventListener("DOMContentLoaded", start);
