"""A small parser of HTTP structured fields (RFC 8941), for the RateLimit and RateLimit-Policy
headers: a List of Items whose bare items are Strings, Tokens, Integers or Booleans, each with
Parameters. Inner lists, decimals and byte sequences are not needed here and are refused."""

import re
import string

TOKEN_FIRST = string.ascii_letters + "*"
TOKEN_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~:/"
KEY_FIRST = string.ascii_lowercase + "*"
KEY_CHARS = string.ascii_lowercase + string.digits + "_-.*"


class ParseError(ValueError):
    pass


class Token(str):
    """A Token bare item, told apart from a String."""


class _Reader:
    def __init__(self, text):
        self.text, self.pos = text, 0

    def peek(self):
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self):
        char = self.peek()
        self.pos += 1
        return char

    def skip_sp(self):
        while self.peek() == " ":
            self.pos += 1

    def skip_ows(self):
        while self.peek() in (" ", "\t") and self.peek():
            self.pos += 1

    def done(self):
        return self.pos >= len(self.text)


def parse_list(text):
    """[(bare item, {param: value}), ...] of a List field; raises ParseError on bad syntax."""
    reader = _Reader(text)
    reader.skip_sp()
    members = []
    while not reader.done():
        members.append(_item(reader))
        reader.skip_ows()
        if reader.done():
            return members
        if reader.take() != ",":
            raise ParseError(f"expected a comma at {reader.pos - 1} in {text!r}")
        reader.skip_ows()
        if reader.done():
            raise ParseError(f"trailing comma in {text!r}")
    return members


def _item(reader):
    if reader.peek() == "(":
        raise ParseError("inner lists are not expected here")
    return _bare(reader), _params(reader)


def _bare(reader):
    char = reader.peek()
    if char == "-" or char.isdigit():
        return _integer(reader)
    if char == '"':
        return _string(reader)
    if char == "?":
        reader.take()
        value = reader.take()
        if value not in "01" or not value:
            raise ParseError("bad boolean")
        return value == "1"
    if char and char in TOKEN_FIRST:
        start = reader.pos
        while reader.peek() and reader.peek() in TOKEN_CHARS:
            reader.take()
        return Token(reader.text[start:reader.pos])
    raise ParseError(f"unexpected {char!r} at {reader.pos} in {reader.text!r}")


def _integer(reader):
    match = re.compile(r"-?\d{1,15}").match(reader.text, reader.pos)
    if not match:
        raise ParseError(f"bad integer at {reader.pos} in {reader.text!r}")
    reader.pos = match.end()
    if reader.peek() == ".":
        raise ParseError("decimals are not expected here")
    if reader.peek().isdigit():
        raise ParseError("integer longer than 15 digits")
    return int(match.group())


def _string(reader):
    reader.take()
    out = []
    while True:
        char = reader.take()
        if not char:
            raise ParseError("unterminated string")
        if char == "\\":
            escaped = reader.take()
            if escaped not in ('"', "\\") or not escaped:
                raise ParseError("bad escape in string")
            out.append(escaped)
        elif char == '"':
            return "".join(out)
        elif not (" " <= char <= "~"):
            raise ParseError(f"character {char!r} not allowed in a string")
        else:
            out.append(char)


def _params(reader):
    params = {}
    while reader.peek() == ";":
        reader.take()
        reader.skip_sp()
        if not reader.peek() or reader.peek() not in KEY_FIRST:
            raise ParseError(f"bad parameter key at {reader.pos} in {reader.text!r}")
        start = reader.pos
        while reader.peek() and reader.peek() in KEY_CHARS:
            reader.take()
        name = reader.text[start:reader.pos]
        if reader.peek() == "=":
            reader.take()
            params[name] = _bare(reader)
        else:
            params[name] = True
    return params


def ratelimit_policy(text):
    """{name: {"q": int, "w": int, ...}} of a RateLimit-Policy field, checking its draft-12 shape."""
    return _named(text, required=("q",), integers=("q", "w"))


def ratelimit(text):
    """{name: {"r": int, "t": int}} of a RateLimit field."""
    return _named(text, required=("r",), integers=("r", "t"))


def _named(text, required, integers):
    out = {}
    for item, params in parse_list(text):
        if isinstance(item, Token) or not isinstance(item, str):
            raise ParseError(f"a policy is named by a String: {item!r}")
        for name in required:
            if name not in params:
                raise ParseError(f"policy {item!r} lacks {name}")
        for name in integers:
            if name in params and (not isinstance(params[name], int) or isinstance(params[name], bool)
                                   or params[name] < 0):
                raise ParseError(f"{name} of {item!r} must be a non-negative integer")
        out[item] = params
    return out
