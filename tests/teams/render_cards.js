// Renders Adaptive Cards with the official JavaScript library (npm "adaptivecards") and reports the markup
// each one produced. Reads a JSON array of cards on stdin; prints a JSON array of
// {problems, tags, text}: the render problems, how many of each markup element the rendered card holds
// (links, headings, images, lists, emphasis, raw HTML...), and the text a person sees.
//
// Two things the library needs from its host are supplied here, without extra npm packages:
// - a DOM: a small one below, enough for AdaptiveCard.render() (elements, text, innerHTML of simple HTML);
// - a markdown processor (AdaptiveCard.onProcessMarkdown): a deliberately permissive one, a superset of
//   what Teams clients render in a TextBlock: CommonMark blocks (headings, lists, quotes, code, rules),
//   links, images, emphasis, strikethrough, raw HTML passed through, and GFM autolinks (https://x,
//   www.x, emails). Backslash escapes work as CommonMark says: an escaped character is plain text.
// TextRun is never given to it: the library, like Teams, renders a TextRun's text as plain text.
"use strict";

// ---------------------------------------------------------------------------------------------------
// A small DOM

const VOID = new Set(["area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"]);

class Node {
  constructor() {
    this.childNodes = [];
    this.parentNode = null;
  }
  get parentElement() {
    return this.parentNode instanceof HTMLElement ? this.parentNode : null;
  }
  get firstChild() {
    return this.childNodes[0] || null;
  }
  get lastChild() {
    return this.childNodes[this.childNodes.length - 1] || null;
  }
  get children() {
    return this.childNodes.filter((n) => n instanceof HTMLElement);
  }
  get firstElementChild() {
    return this.children[0] || null;
  }
  get lastElementChild() {
    const c = this.children;
    return c[c.length - 1] || null;
  }
  get childElementCount() {
    return this.children.length;
  }
  appendChild(child) {
    if (child instanceof DocumentFragment) {
      for (const c of [...child.childNodes]) this.appendChild(c);
      return child;
    }
    if (child.parentNode) child.parentNode.removeChild(child);
    child.parentNode = this;
    this.childNodes.push(child);
    return child;
  }
  append(...nodes) {
    for (const n of nodes) this.appendChild(typeof n === "string" ? new Text(n) : n);
  }
  prepend(...nodes) {
    for (const n of nodes.reverse()) this.insertBefore(typeof n === "string" ? new Text(n) : n, this.firstChild);
  }
  insertBefore(child, ref) {
    if (!ref) return this.appendChild(child);
    if (child.parentNode) child.parentNode.removeChild(child);
    child.parentNode = this;
    this.childNodes.splice(this.childNodes.indexOf(ref), 0, child);
    return child;
  }
  removeChild(child) {
    const i = this.childNodes.indexOf(child);
    if (i >= 0) this.childNodes.splice(i, 1);
    child.parentNode = null;
    return child;
  }
  replaceChild(child, old) {
    this.insertBefore(child, old);
    return this.removeChild(old);
  }
  remove() {
    if (this.parentNode) this.parentNode.removeChild(this);
  }
  contains(node) {
    for (let n = node; n; n = n.parentNode) if (n === this) return true;
    return false;
  }
  get textContent() {
    return this.childNodes.map((n) => n.textContent).join("");
  }
  set textContent(value) {
    for (const c of this.childNodes) c.parentNode = null;
    this.childNodes = [];
    if (value !== undefined && value !== null && value !== "") this.appendChild(new Text(String(value)));
  }
  get nextSibling() {
    const s = this.parentNode ? this.parentNode.childNodes : [];
    return s[s.indexOf(this) + 1] || null;
  }
  get previousSibling() {
    const s = this.parentNode ? this.parentNode.childNodes : [];
    return s[s.indexOf(this) - 1] || null;
  }
  addEventListener() {}
  removeEventListener() {}
  dispatchEvent() {
    return true;
  }
}

class Text extends Node {
  constructor(data) {
    super();
    this.data = data;
    this.nodeType = 3;
  }
  get textContent() {
    return this.data;
  }
  set textContent(value) {
    this.data = String(value);
  }
}

class DocumentFragment extends Node {}

class ClassList {
  constructor() {
    this.names = [];
  }
  add(...names) {
    for (const n of names) if (!this.names.includes(n)) this.names.push(n);
  }
  remove(...names) {
    this.names = this.names.filter((n) => !names.includes(n));
  }
  contains(name) {
    return this.names.includes(name);
  }
  toggle(name, force) {
    const on = force === undefined ? !this.contains(name) : force;
    if (on) this.add(name);
    else this.remove(name);
    return on;
  }
}

function makeStyle() {
  return {
    setProperty(name, value) {
      this[name] = value;
    },
    removeProperty(name) {
      delete this[name];
    },
    getPropertyValue(name) {
      return this[name] || "";
    },
  };
}

class HTMLElement extends Node {
  constructor(tagName) {
    super();
    this.tagName = tagName.toUpperCase();
    this.nodeName = this.tagName;
    this.nodeType = 1;
    this.attributes = {};
    this.style = makeStyle();
    this.classList = new ClassList();
    this.dataset = {};
    this.offsetHeight = 0;
    this.offsetWidth = 0;
    this.scrollHeight = 0;
    this.scrollWidth = 0;
    this.clientHeight = 0;
    this.clientWidth = 0;
  }
  get localName() {
    return this.tagName.toLowerCase();
  }
  get className() {
    return this.classList.names.join(" ");
  }
  set className(value) {
    this.classList.names = String(value).split(/\s+/).filter(Boolean);
  }
  get id() {
    return this.attributes.id || "";
  }
  set id(value) {
    this.attributes.id = String(value);
  }
  setAttribute(name, value) {
    this.attributes[name.toLowerCase()] = String(value);
  }
  getAttribute(name) {
    const v = this.attributes[name.toLowerCase()];
    return v === undefined ? null : v;
  }
  hasAttribute(name) {
    return name.toLowerCase() in this.attributes;
  }
  removeAttribute(name) {
    delete this.attributes[name.toLowerCase()];
  }
  get innerText() {
    return this.textContent;
  }
  set innerText(value) {
    this.textContent = value;
  }
  get innerHTML() {
    return this.childNodes.map(serialize).join("");
  }
  set innerHTML(html) {
    this.textContent = "";
    parseHtmlInto(this, String(html));
  }
  getElementsByTagName(name) {
    const want = name.toUpperCase();
    return descendants(this).filter((e) => want === "*" || e.tagName === want);
  }
  querySelectorAll(selector) {
    // Only what the renderer needs: a tag name or a .class.
    if (selector.startsWith(".")) return descendants(this).filter((e) => e.classList.contains(selector.slice(1)));
    return this.getElementsByTagName(selector);
  }
  querySelector(selector) {
    return this.querySelectorAll(selector)[0] || null;
  }
  getBoundingClientRect() {
    return { top: 0, left: 0, right: 0, bottom: 0, width: 0, height: 0, x: 0, y: 0 };
  }
  focus() {}
  blur() {}
  click() {}
  scrollIntoView() {}
  cloneNode(deep) {
    const copy = document.createElement(this.tagName);
    copy.attributes = { ...this.attributes };
    copy.classList.names = [...this.classList.names];
    if (deep) for (const c of this.childNodes) copy.appendChild(c instanceof Text ? new Text(c.data) : c.cloneNode(true));
    return copy;
  }
}

class HTMLButtonElement extends HTMLElement {}
class HTMLInputElement extends HTMLElement {}
class HTMLSelectElement extends HTMLElement {}
class HTMLSlotElement extends HTMLElement {}
const ELEMENT_CLASSES = { button: HTMLButtonElement, input: HTMLInputElement, select: HTMLSelectElement, slot: HTMLSlotElement };

function descendants(node) {
  const out = [];
  for (const c of node.childNodes) {
    if (c instanceof HTMLElement) out.push(c, ...descendants(c));
  }
  return out;
}

function escapeHtml(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function serialize(node) {
  if (node instanceof Text) return escapeHtml(node.data);
  const attrs = Object.entries(node.attributes)
    .map(([k, v]) => ` ${k}="${escapeHtml(v)}"`)
    .join("");
  const tag = node.localName;
  return VOID.has(tag) ? `<${tag}${attrs}>` : `<${tag}${attrs}>${node.childNodes.map(serialize).join("")}</${tag}>`;
}

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };

function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (all, name) => {
    if (name[0] === "#") {
      const code = name[1] === "x" || name[1] === "X" ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return ENTITIES[name.toLowerCase()] ?? all;
  });
}

// Enough HTML parsing for the markdown processor's output and any raw HTML it lets through.
function parseHtmlInto(root, html) {
  const token = /<!--[\s\S]*?-->|<\/([a-zA-Z][\w-]*)\s*>|<([a-zA-Z][\w-]*)((?:\s+[^\s"'>\/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*)\s*(\/?)>/g;
  const stack = [root];
  let last = 0;
  const text = (s) => {
    if (s) stack[stack.length - 1].appendChild(new Text(decodeEntities(s)));
  };
  for (let m; (m = token.exec(html)); ) {
    text(html.slice(last, m.index));
    last = token.lastIndex;
    if (m[0].startsWith("<!--")) continue;
    if (m[1]) {
      const name = m[1].toUpperCase();
      for (let i = stack.length - 1; i > 0; i--) {
        if (stack[i].tagName === name) {
          stack.length = i;
          break;
        }
      }
      continue;
    }
    const element = document.createElement(m[2]);
    for (const a of m[3].matchAll(/([^\s"'>\/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
      element.setAttribute(a[1], decodeEntities(a[2] ?? a[3] ?? a[4] ?? ""));
    }
    stack[stack.length - 1].appendChild(element);
    if (!m[4] && !VOID.has(element.localName)) stack.push(element);
  }
  text(html.slice(last));
}

class Document extends Node {
  constructor() {
    super();
    this.documentElement = new HTMLElement("html");
    this.body = new HTMLElement("body");
    this.documentElement.appendChild(this.body);
    this.activeElement = this.body;
  }
  createElement(name) {
    return new (ELEMENT_CLASSES[name.toLowerCase()] || HTMLElement)(name);
  }
  createElementNS(ns, name) {
    return this.createElement(name);
  }
  createTextNode(data) {
    return new Text(data);
  }
  createDocumentFragment() {
    return new DocumentFragment();
  }
  getElementById(id) {
    return descendants(this.documentElement).find((e) => e.id === id) || null;
  }
}

const document = new Document();
const window = {
  document,
  navigator: { userAgent: "node" },
  innerWidth: 1024,
  innerHeight: 768,
  outerWidth: 1024,
  outerHeight: 768,
  screenX: 0,
  screenY: 0,
  pageXOffset: 0,
  pageYOffset: 0,
  setTimeout,
  clearTimeout,
  addEventListener() {},
  removeEventListener() {},
  open() {},
  getComputedStyle: () => makeStyle(),
};
Object.assign(globalThis, {
  window,
  document,
  navigator: window.navigator,
  Node,
  Text,
  HTMLElement,
  HTMLButtonElement,
  HTMLInputElement,
  HTMLSelectElement,
  HTMLSlotElement,
  Element: HTMLElement,
  DocumentFragment,
  getComputedStyle: window.getComputedStyle,
});

// ---------------------------------------------------------------------------------------------------
// A permissive markdown processor (what a lenient Teams client could turn into markup, and more)

// Escaped characters and every piece of produced HTML are swapped for private-use placeholders while
// the rules run, so that no rule sees or re-processes them; they come back at the end.
let kept = [];
const keep = (html, literal) => `\uE000${kept.push(Object.assign(new String(html), { literal })) - 1}\uE001`;
const restore = (s) => {
  for (let again = true; again; ) {
    again = false;
    s = s.replace(/\uE000(\d+)\uE001/g, (_, n) => ((again = true), String(kept[n])));
  }
  return s;
};

function markdownToHtml(source) {
  kept = [];
  return restore(blocks(source));
}

function blocks(source) {
  const lines = source.split(/\r\n|\r|\n/);
  const out = [];
  let list = null; // "ul" or "ol" while items follow one another
  let fence = null;
  const closeList = () => {
    if (list) out.push(`</${list}>`);
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (fence) {
      if (line.trim().startsWith(fence)) {
        fence = null;
        out.push("</code></pre>");
      } else {
        out.push(escapeHtml(line) + "\n");
      }
      continue;
    }
    let m;
    if (!line.trim()) {
      closeList();
      continue;
    }
    if ((m = /^ {0,3}(`{3,}|~{3,})/.exec(line))) {
      closeList();
      fence = m[1];
      out.push("<pre><code>");
      continue;
    }
    if (/^ {4,}\S/.test(line) && !list) {
      out.push(`<pre><code>${escapeHtml(line.trim())}</code></pre>`);
      continue;
    }
    if ((m = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t#]*$/.exec(line))) {
      closeList();
      out.push(`<h${m[1].length}>${inline(m[2] || "")}</h${m[1].length}>`);
      continue;
    }
    if (/^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/.test(line)) {
      closeList();
      out.push("<hr>");
      continue;
    }
    const next = lines[i + 1];
    if (next !== undefined && /^ {0,3}(=+|-+)[ \t]*$/.test(next)) {
      closeList();
      const level = next.trim()[0] === "=" ? 1 : 2;
      out.push(`<h${level}>${inline(line.trim())}</h${level}>`);
      i++;
      continue;
    }
    if (line.includes("|") && next !== undefined && /^ {0,3}\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/.test(next)) {
      closeList();
      const cells = (row) => row.trim().replace(/^\||\|$/g, "").split("|");
      out.push("<table><tr>" + cells(line).map((c) => `<th>${inline(c.trim())}</th>`).join("") + "</tr>");
      for (i += 2; i < lines.length && lines[i].includes("|"); i++) {
        out.push("<tr>" + cells(lines[i]).map((c) => `<td>${inline(c.trim())}</td>`).join("") + "</tr>");
      }
      i--;
      out.push("</table>");
      continue;
    }
    if ((m = /^ {0,3}>[ \t]?(.*)$/.exec(line))) {
      closeList();
      out.push(`<blockquote>${blocks(m[1])}</blockquote>`);
      continue;
    }
    if ((m = /^ {0,3}(?:([-+*])|(\d{1,9})[.)])(?:[ \t]+(.*)|$)/.exec(line))) {
      const kind = m[1] ? "ul" : "ol";
      if (list !== kind) {
        closeList();
        list = kind;
        out.push(`<${kind}>`);
      }
      out.push(`<li>${inline(m[3] || "")}</li>`);
      continue;
    }
    closeList();
    out.push(`<p>${inline(line.trim())}</p>`);
  }
  closeList();
  if (fence) out.push("</code></pre>");
  return out.join("");
}

// Inline markdown.
function inline(text) {
  const url = (u) => escapeHtml(u.replace(/\uE000(\d+)\uE001/g, (_, n) => kept[n].literal ?? ""));
  let s = text.replace(/\\([!-\/:-@\[-`{-~])/g, (_, c) => keep(escapeHtml(c), c));
  s = s.replace(/(`+)([\s\S]*?[^`])\1(?!`)/g, (_, __, code) => keep(`<code>${escapeHtml(code.trim())}</code>`));
  // entity and numeric character references are characters (never structure)
  s = s.replace(/&(?:#x[0-9a-f]{1,6}|#\d{1,7}|[a-z]{2,8});/gi, (ref) => keep(escapeHtml(decodeEntities(ref)), decodeEntities(ref)));
  s = s.replace(/<((?:https?|ftp|mailto):[^\s<>]*|[\w.+-]+@[\w-]+(?:\.[\w-]+)+)>/gi, (_, u) =>
    keep(`<a href="${url(u.includes("@") && !u.includes(":") ? "mailto:" + u : u)}">${escapeHtml(u)}</a>`)
  );
  // raw HTML goes through, as a client that allows HTML would show it
  s = s.replace(/<\/?[a-zA-Z][\w-]*(?:\s[^<>]*)?\/?>|<!--[\s\S]*?-->/g, (tag) => keep(tag));
  s = s.replace(/!\[([^\[\]]*)\]\(\s*<?([^\s()<>]*)>?(?:\s+"[^"]*")?\s*\)/g, (_, alt, u) =>
    keep(`<img src="${url(u)}" alt="${escapeHtml(alt)}">`)
  );
  s = s.replace(/\[([^\[\]]*)\]\(\s*<?([^\s()<>]*)>?(?:\s+"[^"]*")?\s*\)/g, (_, label, u) =>
    keep(`<a href="${url(u)}">${inline(label)}</a>`)
  );
  // GFM autolink literals (on text not already turned into markup)
  s = s.replace(/\b(?:https?:\/\/|www\.)[^\s<>\uE000\uE001]*[^\s<>\uE000\uE001.,:;"')\]*_~?!]/gi, (u) =>
    keep(`<a href="${url(u.toLowerCase().startsWith("www.") ? "http://" + u : u)}">${escapeHtml(u)}</a>`)
  );
  s = s.replace(/[\w.+-]+@[\w-]+(?:\.[\w-]+)+/g, (u) => keep(`<a href="mailto:${url(u)}">${escapeHtml(u)}</a>`));
  // emphasis
  s = s.replace(/~~(?=\S)([\s\S]*?\S)~~/g, (_, t) => keep(`<del>${inline(t)}</del>`));
  s = s.replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, (_, t) => keep(`<strong>${inline(t)}</strong>`));
  s = s.replace(/(^|[^\w])__(?=\S)([\s\S]*?\S)__(?![\w])/g, (_, pre, t) => pre + keep(`<strong>${inline(t)}</strong>`));
  s = s.replace(/\*(?=[^\s*])([\s\S]*?[^\s*])\*/g, (_, t) => keep(`<em>${inline(t)}</em>`));
  s = s.replace(/(^|[^\w])_(?=[^\s_])([\s\S]*?[^\s_])_(?![\w])/g, (_, pre, t) => pre + keep(`<em>${inline(t)}</em>`));
  return escapeHtml(s);
}

// ---------------------------------------------------------------------------------------------------

const AC = require("adaptivecards/dist/adaptivecards.js");

// As Teams: a choice's title is plain text (Teams' docs list markdown for TextBlock and Fact only, and the
// Agents Playground shows choice titles as written). The library's default would process them.
AC.GlobalSettings.useMarkdownInRadioButtonAndCheckbox = false;

AC.AdaptiveCard.onProcessMarkdown = (text, result) => {
  result.outputHtml = markdownToHtml(text);
  result.didProcess = true;
};

const MARKUP = [
  "a", "h1", "h2", "h3", "h4", "h5", "h6", "img", "ul", "ol", "li", "strong", "b", "em", "i", "del", "s",
  "code", "pre", "blockquote", "hr", "table", "script", "iframe", "style", "svg", "object", "embed",
  "form", "input", "button", "video", "audio", "link", "meta", "mark", "u",
];

function report(json) {
  const problems = [];
  const context = new AC.SerializationContext();
  const card = new AC.AdaptiveCard();
  card.parse(json, context);
  for (let i = 0; i < context.eventCount; i++) problems.push(`parse: ${context.getEventAt(i).message}`);
  let element;
  try {
    element = card.render();
  } catch (e) {
    problems.push(`render: ${e && e.stack ? e.stack : e}`);
  }
  const tags = {};
  let text = "";
  if (element) {
    for (const name of MARKUP) tags[name] = element.getElementsByTagName(name).length;
    text = element.textContent;
  } else if (!problems.length) {
    problems.push("render: nothing rendered");
  }
  return { problems, tags, text };
}

if (require.main === module) {
  let input = "";
  process.stdin.on("data", (chunk) => (input += chunk));
  process.stdin.on("end", () => process.stdout.write(JSON.stringify(JSON.parse(input).map(report))));
}

module.exports = { markdownToHtml, report };
