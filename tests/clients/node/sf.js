"use strict";
// A parser of RFC 8941 Structured Field Lists, written for these tests: the RateLimit-Policy and
// RateLimit headers are checked by parsing them, not by comparing strings. Throws on any syntax
// error; returns [{ value, params: Map }] (inner lists as { value: [items], params }).
// Bare items: Integer (Number), Decimal (Number, tagged with decimal: true), String ({ string }),
// Token ({ token }), Byte Sequence (Buffer), Boolean.

function parseList(input) {
  const s = String(input);
  let i = 0;
  const fail = (what) => {
    throw new SyntaxError(`structured field: ${what} at ${i} in ${JSON.stringify(s)}`);
  };
  const sp = () => {
    while (s[i] === " ") i++;
  };
  const ows = () => {
    while (s[i] === " " || s[i] === "\t") i++;
  };

  function bareItem() {
    const c = s[i];
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    if (c === '"') return string();
    if (c === "*" || /[A-Za-z]/.test(c || "")) return token();
    if (c === ":") return bytes();
    if (c === "?") return boolean();
    return fail("unexpected character");
  }

  function number() {
    let sign = 1;
    if (s[i] === "-") {
      sign = -1;
      i++;
    }
    const start = i;
    while (i < s.length && /[0-9.]/.test(s[i])) i++;
    const text = s.slice(start, i);
    if (!/^[0-9]/.test(text)) fail("a number needs a digit");
    if (text.includes(".")) {
      if (!/^[0-9]{1,12}\.[0-9]{1,3}$/.test(text)) fail("bad decimal");
      return { decimal: sign * Number(text) };
    }
    if (text.length > 15) fail("integer too long");
    return sign * Number(text);
  }

  function string() {
    i++;
    let out = "";
    for (;;) {
      if (i >= s.length) fail("unterminated string");
      const c = s[i++];
      if (c === "\\") {
        const next = s[i++];
        if (next !== '"' && next !== "\\") fail("bad escape");
        out += next;
      } else if (c === '"') {
        return { string: out };
      } else if (c < " " || c > "~") {
        fail("character not allowed in a string");
      } else {
        out += c;
      }
    }
  }

  function token() {
    const start = i;
    i++;
    while (i < s.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z:/]/.test(s[i])) i++;
    return { token: s.slice(start, i) };
  }

  function bytes() {
    i++;
    const end = s.indexOf(":", i);
    if (end < 0) fail("unterminated byte sequence");
    const b64 = s.slice(i, end);
    if (!/^[A-Za-z0-9+/=]*$/.test(b64)) fail("bad base64");
    i = end + 1;
    return Buffer.from(b64, "base64");
  }

  function boolean() {
    i++;
    if (s[i] !== "0" && s[i] !== "1") fail("bad boolean");
    return s[i++] === "1";
  }

  function key() {
    if (!/[a-z*]/.test(s[i] || "")) fail("a key starts with a-z or *");
    const start = i;
    while (i < s.length && /[a-z0-9_\-.*]/.test(s[i])) i++;
    return s.slice(start, i);
  }

  function params() {
    const out = new Map();
    while (s[i] === ";") {
      i++;
      sp();
      const k = key();
      let v = true;
      if (s[i] === "=") {
        i++;
        v = bareItem();
      }
      out.set(k, v);
    }
    return out;
  }

  function item() {
    if (s[i] === "(") {
      i++;
      const inner = [];
      for (;;) {
        sp();
        if (s[i] === ")") {
          i++;
          return { value: inner, params: params() };
        }
        inner.push({ value: bareItem(), params: params() });
        if (s[i] !== " " && s[i] !== ")") fail("inner list items are separated by spaces");
      }
    }
    return { value: bareItem(), params: params() };
  }

  sp();
  const members = [];
  if (i >= s.length) return members;
  for (;;) {
    members.push(item());
    ows();
    if (i >= s.length) return members;
    if (s[i] !== ",") fail("expected a comma");
    i++;
    ows();
    if (i >= s.length) fail("trailing comma");
  }
}

/** A RateLimit or RateLimit-Policy field as { name: { q, w } or { r, t } }; names must be Strings. */
function rateLimitItems(field) {
  const out = {};
  for (const member of parseList(field)) {
    if (!member.value || typeof member.value.string !== "string") throw new SyntaxError("a member is not a String");
    out[member.value.string] = Object.fromEntries(member.params);
  }
  return out;
}

module.exports = { parseList, rateLimitItems };
