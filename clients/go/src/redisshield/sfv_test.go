package redisshield

// A small parser of RFC 8941 structured-field Lists (items with parameters), enough to check the
// RateLimit and RateLimit-Policy headers by their grammar rather than by comparing strings.

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

type sfItem struct {
	value  interface{} // string (sf-string), sfToken, int64, bool
	params map[string]interface{}
	order  []string
}

type sfToken string

type sfParser struct {
	s string
	i int
}

func parseSFList(s string) ([]sfItem, error) {
	p := &sfParser{s: s}
	p.skip(" ")
	var items []sfItem
	for p.i < len(p.s) {
		item, err := p.item()
		if err != nil {
			return nil, err
		}
		items = append(items, item)
		p.skip(" \t")
		if p.i == len(p.s) {
			return items, nil
		}
		if p.s[p.i] != ',' {
			return nil, fmt.Errorf("at %d of %q: want a comma", p.i, s)
		}
		p.i++
		p.skip(" \t")
		if p.i == len(p.s) {
			return nil, fmt.Errorf("%q: a trailing comma", s)
		}
	}
	return items, nil
}

func (p *sfParser) skip(chars string) {
	for p.i < len(p.s) && strings.IndexByte(chars, p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *sfParser) item() (sfItem, error) {
	value, err := p.bare()
	if err != nil {
		return sfItem{}, err
	}
	item := sfItem{value: value, params: map[string]interface{}{}}
	for p.i < len(p.s) && p.s[p.i] == ';' {
		p.i++
		p.skip(" ")
		key, err := p.key()
		if err != nil {
			return sfItem{}, err
		}
		var v interface{} = true
		if p.i < len(p.s) && p.s[p.i] == '=' {
			p.i++
			if v, err = p.bare(); err != nil {
				return sfItem{}, err
			}
		}
		if _, dup := item.params[key]; !dup {
			item.order = append(item.order, key)
		}
		item.params[key] = v
	}
	return item, nil
}

func (p *sfParser) key() (string, error) {
	start := p.i
	if p.i >= len(p.s) || !(p.s[p.i] >= 'a' && p.s[p.i] <= 'z' || p.s[p.i] == '*') {
		return "", fmt.Errorf("at %d of %q: a key starts with a lower-case letter or *", p.i, p.s)
	}
	for p.i < len(p.s) && strings.IndexByte("abcdefghijklmnopqrstuvwxyz0123456789_-.*", p.s[p.i]) >= 0 {
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) bare() (interface{}, error) {
	if p.i >= len(p.s) {
		return nil, fmt.Errorf("%q ends where a value should be", p.s)
	}
	c := p.s[p.i]
	switch {
	case c == '"':
		var b strings.Builder
		for p.i++; p.i < len(p.s); p.i++ {
			c := p.s[p.i]
			switch {
			case c == '\\':
				p.i++
				if p.i >= len(p.s) || (p.s[p.i] != '"' && p.s[p.i] != '\\') {
					return nil, fmt.Errorf("%q: a bad escape", p.s)
				}
				b.WriteByte(p.s[p.i])
			case c == '"':
				p.i++
				return b.String(), nil
			case c < 0x20 || c > 0x7e:
				return nil, fmt.Errorf("%q: a character not allowed in a string", p.s)
			default:
				b.WriteByte(c)
			}
		}
		return nil, fmt.Errorf("%q: an unterminated string", p.s)
	case c == '-' || c >= '0' && c <= '9':
		start := p.i
		if c == '-' {
			p.i++
		}
		digits := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		if p.i == digits || p.i-digits > 15 || p.i < len(p.s) && p.s[p.i] == '.' {
			return nil, fmt.Errorf("%q: only integers of 1 to 15 digits are expected here", p.s)
		}
		return strconv.ParseInt(p.s[start:p.i], 10, 64)
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			p.i += 2
			return p.s[p.i-1] == '1', nil
		}
		return nil, fmt.Errorf("%q: a bad boolean", p.s)
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '*':
		start := p.i
		for p.i < len(p.s) && (strings.IndexByte("!#$%&'*+-.^_`|~:/", p.s[p.i]) >= 0 ||
			p.s[p.i] >= 'a' && p.s[p.i] <= 'z' || p.s[p.i] >= 'A' && p.s[p.i] <= 'Z' || p.s[p.i] >= '0' && p.s[p.i] <= '9') {
			p.i++
		}
		return sfToken(p.s[start:p.i]), nil
	}
	return nil, fmt.Errorf("at %d of %q: not a value", p.i, p.s)
}

func TestTheStructuredFieldParserAcceptsListsAndRejectsBrokenOnes(t *testing.T) {
	items, err := parseSFList(`"a";q=10;w=2, "b\"c";r=-1;t=0, tok;x, ?1`)
	if err != nil || len(items) != 4 || items[1].value != `b"c` || items[1].params["r"] != int64(-1) ||
		items[2].value != sfToken("tok") || items[2].params["x"] != true || items[3].value != true {
		t.Fatalf("got %+v, %v", items, err)
	}
	for _, bad := range []string{`"a";q=1,`, `"a";Q=1`, `"a" "b"`, `"a;q=1`, `"a";q=1.5`, `"a";q=1234567890123456`, `"a",,"b"`} {
		if _, err := parseSFList(bad); err == nil {
			t.Errorf("%q should not parse", bad)
		}
	}
}

// rateLimitFields parses both headers and checks what the draft asks of them: each item a string
// naming a policy, with integer parameters q and w (RateLimit-Policy), r and t (RateLimit); every
// RateLimit item names a policy of RateLimit-Policy, and r <= q. It returns policy -> parameters.
func rateLimitFields(t testing.TB, policyHeader, rateLimitHeader string) (map[string]map[string]int64, map[string]map[string]int64) {
	t.Helper()
	read := func(header string, params ...string) map[string]map[string]int64 {
		items, err := parseSFList(header)
		if err != nil {
			t.Fatalf("%q is not a structured-field list: %v", header, err)
		}
		out := map[string]map[string]int64{}
		for _, item := range items {
			name, ok := item.value.(string)
			if !ok {
				t.Fatalf("%q: each item should be a string naming a policy", header)
			}
			out[name] = map[string]int64{}
			for _, p := range params {
				n, ok := item.params[p].(int64)
				if !ok || n < 0 {
					t.Fatalf("%q: %s should have a non-negative integer %s", header, name, p)
				}
				out[name][p] = n
			}
		}
		return out
	}
	policies := read(policyHeader, "q", "w")
	state := map[string]map[string]int64{}
	if rateLimitHeader != "" {
		state = read(rateLimitHeader, "r", "t")
	}
	for name, s := range state {
		p, ok := policies[name]
		if !ok {
			t.Fatalf("RateLimit names %q, which RateLimit-Policy does not", name)
		}
		if s["r"] > p["q"] {
			t.Fatalf("%s: r=%d exceeds q=%d", name, s["r"], p["q"])
		}
	}
	return policies, state
}
