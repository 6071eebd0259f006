package redisshield

// The middleware's cost per request against the bare handler (go test -run - -bench .; by hand:
// bash tests/clients/go/run-bench.sh, which also writes bench/results/clients-go.json):
// BenchmarkBareHandler, BenchmarkMiddlewareAllowed and ...AllowedTwoPolicies (one SHIELD.limit
// round trip to a local Redis per request, over one policy or two), ...RefusedByRedis (the deny
// cache off) and ...RefusedFromTheDenyCache (no round trip). In-process requests
// (httptest.NewRecorder), so the figures are the middleware's own cost, not the network's.

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func benchmarkHandler(b *testing.B, handler http.Handler, key func(i int) string) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-User", key(i))
		handler.ServeHTTP(httptest.NewRecorder(), r)
	}
}

func benchmarkMiddleware(b *testing.B, opts LimiterOptions, key func(i int) string, policies ...Policy) {
	s := startServer(b, false)
	l := newLimiter(b, newClient(b, s.url()), opts, policies...)
	mw, err := Middleware(MiddlewareOptions{Limiter: l, Key: HeaderKey("X-User", nil)})
	if err != nil {
		b.Fatal(err)
	}
	benchmarkHandler(b, mw(http.HandlerFunc(hello)), key)
}

func BenchmarkBareHandler(b *testing.B) {
	benchmarkHandler(b, http.HandlerFunc(hello), func(int) string { return "u" })
}

var generous = Policy{Name: "generous", Algorithm: Bucket, Limit: 1 << 40, Period: time.Second}

func BenchmarkMiddlewareAllowed(b *testing.B) {
	benchmarkMiddleware(b, LimiterOptions{}, func(i int) string { return "u" + strconv.Itoa(i%1000) }, generous)
}

func BenchmarkMiddlewareAllowedTwoPolicies(b *testing.B) {
	monthly := Policy{Name: "monthly", Algorithm: Quota, Limit: 1 << 40, Calendar: Month}
	benchmarkMiddleware(b, LimiterOptions{}, func(i int) string { return "u" + strconv.Itoa(i%1000) }, generous, monthly)
}

func BenchmarkMiddlewareRefusedByRedis(b *testing.B) {
	benchmarkMiddleware(b, LimiterOptions{DenyCacheSize: -1}, func(int) string { return "flooder" }, perMinute)
}

func BenchmarkMiddlewareRefusedFromTheDenyCache(b *testing.B) {
	benchmarkMiddleware(b, LimiterOptions{}, func(int) string { return "flooder" }, perMinute)
}
