package redisshield

// The middleware's cost per request against the bare handler (go test -run - -bench .):
// BenchmarkBareHandler, BenchmarkMiddlewareAllowed (one pipelined round trip to a local Redis per
// request), BenchmarkMiddlewareRefusedFromTheDenyCache (no round trip). In-process requests
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

func benchmarkMiddleware(b *testing.B, policy Policy, key func(i int) string) {
	s := startServer(b, false)
	l := newLimiter(b, newClient(b, s.url()), LimiterOptions{}, policy)
	mw, err := Middleware(MiddlewareOptions{Limiter: l, Key: HeaderKey("X-User", nil)})
	if err != nil {
		b.Fatal(err)
	}
	benchmarkHandler(b, mw(http.HandlerFunc(hello)), key)
}

func BenchmarkBareHandler(b *testing.B) {
	benchmarkHandler(b, http.HandlerFunc(hello), func(int) string { return "u" })
}

func BenchmarkMiddlewareAllowed(b *testing.B) {
	generous := Policy{Name: "generous", Algorithm: Bucket, Limit: 1 << 40, Period: time.Second}
	benchmarkMiddleware(b, generous, func(i int) string { return "u" + strconv.Itoa(i%1000) })
}

func BenchmarkMiddlewareRefusedFromTheDenyCache(b *testing.B) {
	benchmarkMiddleware(b, perMinute, func(int) string { return "flooder" })
}
