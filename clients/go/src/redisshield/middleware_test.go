package redisshield

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

var (
	perSecond = Policy{Name: "per-second", Algorithm: Bucket, Limit: 5, Period: time.Second, Burst: 10}
	perDay    = Policy{Name: "per-day", Algorithm: Quota, Limit: 1000, Calendar: Day}
)

func hello(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") }

// serve runs handler behind the middleware on a real loopback HTTP server.
func serve(t *testing.T, opts MiddlewareOptions, handler http.HandlerFunc) *httptest.Server {
	t.Helper()
	mw, err := Middleware(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mw(handler))
	t.Cleanup(srv.Close)
	return srv
}

type reply struct {
	status int
	header http.Header
	body   string
}

func get(t *testing.T, url string, headers ...string) reply {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(body)}
}

func TestTheMiddlewareSetsRateLimitHeadersOnEveryResponseAndAnswers429WithProblemJSON(t *testing.T) {
	s := startServer(t, false)
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{}, perSecond, perDay)
	srv := serve(t, MiddlewareOptions{Limiter: l}, hello)
	var statuses []int
	for i := 0; i < 12; i++ {
		r := get(t, srv.URL+"/")
		statuses = append(statuses, r.status)
		policies, state := rateLimitFields(t, r.header.Get("RateLimit-Policy"), r.header.Get("RateLimit"))
		if policies["per-second"]["q"] != 10 || policies["per-second"]["w"] != 2 || policies["per-day"]["q"] != 1000 ||
			policies["per-day"]["w"] != 86400 {
			t.Fatalf("RateLimit-Policy: %v", policies)
		}
		if len(state) != 2 {
			t.Fatalf("RateLimit should name both policies: %q", r.header.Get("RateLimit"))
		}
		if i < 10 {
			if r.status != 200 || r.body != "hello\n" || state["per-second"]["r"] != int64(9-i) {
				t.Fatalf("request %d: want 200 hello with r=%d, got %d %q %v", i+1, 9-i, r.status, r.body, state)
			}
			continue
		}
		if r.status != http.StatusTooManyRequests || r.header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("request %d: want a 429 problem, got %d %q", i+1, r.status, r.header.Get("Content-Type"))
		}
		retry, err := strconv.Atoi(r.header.Get("Retry-After"))
		if err != nil || retry < 1 {
			t.Fatalf("Retry-After should be whole seconds, got %q", r.header.Get("Retry-After"))
		}
		var problem Problem
		if err := json.Unmarshal([]byte(r.body), &problem); err != nil || problem.Status != 429 ||
			strings.Join(problem.Violated, ",") != "per-second" || problem.RetryAfter == nil || *problem.RetryAfter != int64(retry) {
			t.Fatalf("the problem body should name per-second: %q (%v)", r.body, err)
		}
		// A 429 takes nothing from any policy: the daily count stays at the ten requests served.
		if state["per-day"]["r"] != 990 {
			t.Fatalf("request %d: the daily quota should still hold 990, got %v", i+1, state)
		}
	}
	if daily, _ := redis.Int64(s.do("GET", l.Key("ip:127.0.0.1", "per-day")), nil); daily != 10 {
		t.Fatalf("after ten 200s and two 429s the daily count should be 10, not %d", daily)
	}
	t.Logf("statuses: %v", statuses)
}

func TestClientIPHonoursXForwardedForOnlyFromTrustedProxies(t *testing.T) {
	direct, _ := ClientIP()
	behind, err := ClientIP("10.0.0.0/8", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		key     KeyFunc
		remote  string
		forward []string
		want    string
	}{
		{direct, "203.0.113.7:5000", []string{"1.2.3.4"}, "ip:203.0.113.7"},               // no trusted proxy: ignored
		{behind, "203.0.113.7:5000", []string{"1.2.3.4"}, "ip:203.0.113.7"},               // not from a proxy: ignored
		{behind, "10.1.2.3:5000", []string{"1.2.3.4"}, "ip:1.2.3.4"},                      // from a proxy
		{behind, "10.1.2.3:5000", []string{"6.6.6.6, 1.2.3.4, 10.9.9.9"}, "ip:1.2.3.4"},   // forged left part skipped
		{behind, "192.0.2.1:5000", []string{"6.6.6.6", "1.2.3.4, 10.0.0.2"}, "ip:1.2.3.4"}, // several header lines
		{behind, "10.1.2.3:5000", []string{"garbage, 10.0.0.5"}, "ip:10.0.0.5"},           // stops at a bad entry
		{behind, "10.1.2.3:5000", nil, "ip:10.1.2.3"},
		{behind, "[2001:db8::1]:5000", []string{"1.2.3.4"}, "ip:2001:db8::1"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		for _, f := range c.forward {
			r.Header.Add("X-Forwarded-For", f)
		}
		if got, err := c.key(r); err != nil || got != c.want {
			t.Errorf("%s with %q: got %q (%v), want %q", c.remote, c.forward, got, err, c.want)
		}
	}
	if _, err := ClientIP("not-an-address"); err == nil {
		t.Error("a bad trusted proxy should be refused")
	}
}

func TestBehindATrustedProxyEachForwardedClientHasItsOwnLimit(t *testing.T) {
	s := startServer(t, false)
	one := Policy{Name: "one", Algorithm: Bucket, Limit: 1, Period: time.Minute}
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{}, one)
	trusted, _ := ClientIP("127.0.0.1")
	srv := serve(t, MiddlewareOptions{Limiter: l, Key: trusted}, hello)
	untrusted := serve(t, MiddlewareOptions{Limiter: newLimiter(t, newClient(t, s.url()), LimiterOptions{Prefix: "u:"}, one)}, hello)
	for _, ip := range []string{"198.51.100.1", "198.51.100.2"} {
		if r := get(t, srv.URL, "X-Forwarded-For", ip); r.status != 200 {
			t.Fatalf("%s's first request should pass, got %d", ip, r.status)
		}
	}
	if r := get(t, srv.URL, "X-Forwarded-For", "198.51.100.1"); r.status != 429 {
		t.Fatalf("198.51.100.1's second request should be refused, got %d", r.status)
	}
	get(t, untrusted.URL, "X-Forwarded-For", "198.51.100.1")
	if r := get(t, untrusted.URL, "X-Forwarded-For", "198.51.100.2"); r.status != 429 {
		t.Fatalf("without a trusted proxy a made-up X-Forwarded-For must not dodge the limit, got %d", r.status)
	}
}

func TestAHeaderKeyCountsEachValueApartAndFallsBackToTheAddress(t *testing.T) {
	s := startServer(t, false)
	one := Policy{Name: "one", Algorithm: Bucket, Limit: 1, Period: time.Minute}
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{}, one)
	byIP, _ := ClientIP()
	srv := serve(t, MiddlewareOptions{Limiter: l, Key: HeaderKey("X-Api-Key", byIP)}, hello)
	for _, k := range []string{"key-a", "key-b"} {
		if r := get(t, srv.URL, "X-Api-Key", k); r.status != 200 {
			t.Fatalf("%s should pass once", k)
		}
	}
	if r := get(t, srv.URL); r.status != 200 {
		t.Fatal("a request without the header is counted by its address, which is fresh")
	}
	if r := get(t, srv.URL, "X-Api-Key", "key-a"); r.status != 429 {
		t.Fatal("key-a's second request should be refused")
	}
	strict := serve(t, MiddlewareOptions{Limiter: l, Key: HeaderKey("X-Api-Key", nil)}, hello)
	if r := get(t, strict.URL); r.status != 400 || !strings.Contains(r.body, "X-Api-Key") {
		t.Fatalf("without a fallback a missing header is a 400, got %d %q", r.status, r.body)
	}
	byUser := func(r *http.Request) (string, error) { // the authenticated user, from a function
		user, _, _ := r.BasicAuth()
		return "user:" + user, nil
	}
	users := serve(t, MiddlewareOptions{Limiter: l, Key: byUser}, hello)
	req, _ := http.NewRequest("GET", users.URL, nil)
	req.SetBasicAuth("zoe", "x")
	for want := 200; want <= 429; want += 229 {
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != want {
			t.Fatalf("zoe: want %d, got %v %v", want, resp, err)
		}
		resp.Body.Close()
	}
}

func TestExemptPathsAreNotLimitedAndGetNoHeaders(t *testing.T) {
	s := startServer(t, false)
	one := Policy{Name: "one", Algorithm: Bucket, Limit: 1, Period: time.Minute}
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{}, one)
	srv := serve(t, MiddlewareOptions{Limiter: l, Exempt: []string{"/healthz", "/static/"}}, hello)
	for i := 0; i < 3; i++ {
		for _, path := range []string{"/healthz", "/static/app.js"} {
			r := get(t, srv.URL+path)
			if r.status != 200 || r.header.Get("RateLimit-Policy") != "" {
				t.Fatalf("%s should be exempt, got %d %v", path, r.status, r.header)
			}
		}
	}
	if r := get(t, srv.URL+"/healthz/deep"); r.header.Get("RateLimit-Policy") == "" {
		t.Fatal("/healthz is exact: /healthz/deep is limited")
	}
}

func TestEachRouteHasItsOwnPoliciesAndTheCostComesFromTheRequest(t *testing.T) {
	s := startServer(t, false)
	client := newClient(t, s.url())
	site := newLimiter(t, client, LimiterOptions{}, Policy{Name: "site", Algorithm: Bucket, Limit: 100, Period: time.Minute})
	api := newLimiter(t, client, LimiterOptions{}, Policy{Name: "api", Algorithm: Window, Limit: 10, Period: time.Minute})
	cost := func(r *http.Request) int64 {
		n, _ := strconv.ParseInt(r.URL.Query().Get("items"), 10, 64)
		return n
	}
	srv := serve(t, MiddlewareOptions{Limiter: site, Routes: map[string]*Limiter{"/api/": api}, Cost: cost}, hello)
	r := get(t, srv.URL+"/api/export?items=7")
	_, state := rateLimitFields(t, r.header.Get("RateLimit-Policy"), r.header.Get("RateLimit"))
	if r.status != 200 || state["api"]["r"] != 3 || state["site"] != nil {
		t.Fatalf("/api/ should take 7 from the api policy only, got %d %v", r.status, state)
	}
	if r := get(t, srv.URL+"/api/export?items=4"); r.status != 429 || !strings.Contains(r.body, `"api"`) {
		t.Fatalf("4 more do not fit in 3, got %d %q", r.status, r.body)
	}
	if r := get(t, srv.URL+"/api/export?items=11"); r.status != 429 || r.header.Get("Retry-After") != "" ||
		!strings.Contains(r.body, `"violated_policies":["api"]`) || strings.Contains(r.body, "retry_after") {
		t.Fatalf("11 never fit in 10: a 429 without Retry-After, got %d %v %q", r.status, r.header, r.body)
	}
	r = get(t, srv.URL + "/page")
	_, state = rateLimitFields(t, r.header.Get("RateLimit-Policy"), r.header.Get("RateLimit"))
	if r.status != 200 || state["site"]["r"] != 99 {
		t.Fatalf("other paths use the site policy at cost 1, got %v", state)
	}
}

func TestLegacyXRateLimitHeadersAreAddedOnlyWhenAsked(t *testing.T) {
	s := startServer(t, false)
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{}, perSecond, perDay)
	plain := serve(t, MiddlewareOptions{Limiter: l}, hello)
	legacy := serve(t, MiddlewareOptions{Limiter: l, LegacyHeaders: true, Key: HeaderKey("X-User", nil)}, hello)
	if r := get(t, plain.URL); r.header.Get("X-RateLimit-Limit") != "" {
		t.Fatal("no X-RateLimit-* headers unless asked")
	}
	r := get(t, legacy.URL, "X-User", "u1")
	if r.header.Get("X-RateLimit-Limit") != "10" || r.header.Get("X-RateLimit-Remaining") != "9" || r.header.Get("X-RateLimit-Reset") != "1" {
		t.Fatalf("want the per-second policy's figures (the least remaining), got %v", r.header)
	}
}

func TestWhileRedisIsDownAFailOpenRouteServesAndAFailClosedRouteAnswers503(t *testing.T) {
	s := startServer(t, false)
	client := newClient(t, s.url())
	quiet := LimiterOptions{Logger: func(string) {}}
	open := newLimiter(t, client, quiet, perSecond)
	strictPolicy := perSecond
	strictPolicy.OnFailure = FailClosed
	closed := newLimiter(t, client, quiet, strictPolicy)
	srv := serve(t, MiddlewareOptions{Limiter: open, Routes: map[string]*Limiter{"/admin/": closed}}, hello)
	if r := get(t, srv.URL+"/admin/x"); r.status != 200 || r.header.Get("RateLimit") == "" {
		t.Fatalf("with Redis up, got %d", r.status)
	}
	s.kill()
	r := get(t, srv.URL+"/")
	if r.status != 200 || r.header.Get("RateLimit-Policy") == "" || r.header.Get("RateLimit") != "" {
		t.Fatalf("fail-open: want 200 with RateLimit-Policy and no RateLimit, got %d %v", r.status, r.header)
	}
	r = get(t, srv.URL+"/admin/x")
	if r.status != 503 || r.header.Get("Retry-After") != "1" || !strings.Contains(r.body, `"violated_policies":["per-second"]`) {
		t.Fatalf("fail-closed: want 503 with Retry-After 1, got %d %v %q", r.status, r.header, r.body)
	}
	if open.Stats().FailOpen != 1 || closed.Stats().FailClosed != 1 {
		t.Fatalf("each decision is counted: %+v %+v", open.Stats(), closed.Stats())
	}
}
