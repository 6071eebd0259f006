package redisshield

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

func newClient(t testing.TB, url string) *Client {
	t.Helper()
	c, err := NewClientFromURL(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newLimiter(t testing.TB, c *Client, opts LimiterOptions, policies ...Policy) *Limiter {
	t.Helper()
	l, err := NewLimiter(c, policies, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func limit(t testing.TB, l *Limiter, key string, cost int64) Result {
	t.Helper()
	res, err := l.Limit(context.Background(), key, cost)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

var perMinute = Policy{Name: "per-minute", Algorithm: Bucket, Limit: 3, Period: time.Minute}

func TestABucketPolicyAllowsUntilEmptyThenRefusesWithTheExactRetryAfter(t *testing.T) {
	s := startServer(t, false)
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{DenyCacheSize: -1}, perMinute)
	for want := int64(2); want >= 0; want-- {
		res := limit(t, l, "alice", 1)
		if !res.Allowed || res.Remaining != want || res.RetryAfter != 0 || len(res.Violated) != 0 {
			t.Fatalf("want allowed with %d left, got %+v", want, res)
		}
	}
	res := limit(t, l, "alice", 1)
	// 3 per minute: a token every 20 s; the third was taken a moment ago.
	if res.Allowed || res.Remaining != 0 || res.RetryAfter <= 19*time.Second || res.RetryAfter > 20*time.Second {
		t.Fatalf("want refused with a retry-after of about 20 s, got %+v", res)
	}
	if strings.Join(res.Violated, ",") != "per-minute" || res.Cached {
		t.Fatalf("want per-minute violated, from Redis, got %+v", res)
	}
	if res.RetryAfterSeconds() != 20 {
		t.Fatalf("Retry-After should round up to 20, got %d", res.RetryAfterSeconds())
	}
	if got := s.do("GET", l.Key("alice", "per-minute")); got == nil {
		t.Fatal("the bucket's key should be <prefix>{<key>}:<policy>")
	}
}

func TestACostAboveWhatAPolicyCanHoldIsRefusedWithANegativeRetryAfter(t *testing.T) {
	s := startServer(t, false)
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{}, perMinute)
	res := limit(t, l, "bob", 4)
	if res.Allowed || res.RetryAfter >= 0 || res.RetryAfterSeconds() != -1 {
		t.Fatalf("want refused forever, got %+v", res)
	}
	if _, err := l.Acquire(context.Background(), "bob", 4, time.Minute); !errors.Is(err, ErrWaitTooLong) {
		t.Fatalf("Acquire should give up at once, got %v", err)
	}
}

func TestAPolicyCostMultipliesTheCallsCost(t *testing.T) {
	s := startServer(t, false)
	heavy := Policy{Name: "heavy", Algorithm: Window, Limit: 100, Period: time.Minute, Cost: 10}
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{}, heavy)
	if res := limit(t, l, "carol", 3); !res.Allowed || res.Remaining != 70 {
		t.Fatalf("a call of cost 3 under Cost 10 should take 30 of 100, got %+v", res)
	}
}

func TestABucketWithABurstHoldsTheBurstAndReportsItAsQ(t *testing.T) {
	s := startServer(t, false)
	burst := Policy{Name: "bursty", Algorithm: Bucket, Limit: 5, Period: time.Second, Burst: 10}
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{}, burst)
	res := limit(t, l, "dave", 1)
	p := res.Policies[0]
	if !res.Allowed || p.Remaining != 9 || p.Quota != 10 || p.Window != 2 {
		t.Fatalf("want 9 of q=10 per w=2, got %+v", p)
	}
	for i := 0; i < 9; i++ {
		limit(t, l, "dave", 1)
	}
	if res := limit(t, l, "dave", 1); res.Allowed || res.RetryAfter > 200*time.Millisecond {
		t.Fatalf("the 11th call should wait about 200 ms, got %+v", res)
	}
}

func TestWhenAQuotaRefusesTheBucketKeepsItsTokensAndTheQuotaIsNamed(t *testing.T) {
	s := startServer(t, false)
	daily := Policy{Name: "daily", Algorithm: Quota, Limit: 2, Calendar: Day}
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{DenyCacheSize: -1}, perMinute, daily)
	limit(t, l, "erin", 1)
	limit(t, l, "erin", 1)
	before := s.commandCalls()
	res := limit(t, l, "erin", 1)
	after := s.commandCalls()
	if res.Allowed || strings.Join(res.Violated, ",") != "daily" {
		t.Fatalf("want the daily quota violated, got %+v", res)
	}
	if res.RetryAfter <= 0 || res.RetryAfter > 24*time.Hour || res.Policies[1].Window != 86400 {
		t.Fatalf("the quota's retry-after is the time to midnight UTC, got %+v", res)
	}
	// The bucket allowed but gave nothing: 1 token left, as before the call.
	if bucket := res.Policies[0]; !bucket.Allowed || bucket.Remaining != 1 {
		t.Fatalf("the bucket should still hold 1 token, got %+v", bucket)
	}
	sent := int64(0)
	for name, calls := range after {
		if name != "info" {
			sent += calls - before[name]
		}
	}
	if after["shield.limit"]-before["shield.limit"] != 1 || sent != 1 {
		t.Fatalf("want one SHIELD.limit and no other command (no refund); got %v then %v", before, after)
	}
	if tokens, _ := redis.Int64(s.do("GET", l.Key("erin", "per-minute")), nil); tokens != 1 {
		t.Fatalf("the bucket's key should hold 1 token, not %d", tokens)
	}
}

func TestARefusedCallTakesNothingFromAnyPolicyOfAnyAlgorithm(t *testing.T) {
	s := startServer(t, false)
	policies := []Policy{
		{Name: "hourly-bucket", Algorithm: Bucket, Limit: 100, Period: time.Hour},
		{Name: "hourly-gcra", Algorithm: GCRA, Limit: 100, Period: time.Hour},
		{Name: "hourly-window", Algorithm: Window, Limit: 100, Period: time.Hour},
		{Name: "monthly-quota", Algorithm: Quota, Limit: 100, Calendar: Month},
		{Name: "tight", Algorithm: Bucket, Limit: 3, Period: time.Hour},
	}
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{DenyCacheSize: -1}, policies...)
	if res := limit(t, l, "fay", 3); !res.Allowed || res.Remaining != 0 {
		t.Fatalf("want the first call of cost 3 allowed by all, got %+v", res)
	}
	stored := func() []string {
		var values []string
		for _, p := range policies {
			v, _ := redis.String(s.do("GET", l.Key("fay", p.Name)), nil)
			values = append(values, v)
		}
		return values
	}
	before := stored()
	for i := 0; i < 3; i++ {
		res := limit(t, l, "fay", 1)
		if res.Allowed || strings.Join(res.Violated, ",") != "tight" {
			t.Fatalf("want refused by tight only, got %+v", res)
		}
		for _, p := range res.Policies[:4] {
			if !p.Allowed || p.Remaining != 97 {
				t.Fatalf("%s should allow and still hold 97, got %+v", p.Name, p)
			}
		}
	}
	if after := stored(); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Fatalf("a refused call should write nothing: %q became %q", before, after)
	}
}

func TestConcurrentCallsTakeExactlyTheLimitAndTheRefusedCountNowhere(t *testing.T) {
	s := startServer(t, false)
	ten := Policy{Name: "ten", Algorithm: Bucket, Limit: 10, Period: time.Hour}
	daily := Policy{Name: "daily", Algorithm: Quota, Limit: 1000, Calendar: Day}
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{DenyCacheSize: -1, Timeout: 5 * time.Second}, ten, daily)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := l.Limit(context.Background(), "ivy", 1)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
			} else if res.Allowed {
				allowed++
			}
		}()
	}
	wg.Wait()
	dailyCount, _ := redis.Int64(s.do("GET", l.Key("ivy", "daily")), nil)
	if allowed != 10 || dailyCount != 10 {
		t.Fatalf("50 concurrent calls: want 10 allowed and a daily count of 10, got %d and %d", allowed, dailyCount)
	}
}

func TestAGCRAPolicyWithABurstAllowsTheBurstThenOneCallPerInterval(t *testing.T) {
	s := startServer(t, false)
	cell := Policy{Name: "cell", Algorithm: GCRA, Limit: 5, Period: time.Second, Burst: 10}
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{DenyCacheSize: -1}, cell)
	res := limit(t, l, "gina", 1)
	if p := res.Policies[0]; !res.Allowed || p.Remaining != 9 || p.Quota != 10 || p.Window != 2 {
		t.Fatalf("want 9 of q=10 per w=2, got %+v", p)
	}
	if res.PolicyHeader() != `"cell";q=10;w=2` {
		t.Fatalf("RateLimit-Policy: %q", res.PolicyHeader())
	}
	for i := 0; i < 9; i++ {
		limit(t, l, "gina", 1)
	}
	res = limit(t, l, "gina", 1)
	if res.Allowed || res.RetryAfter <= 0 || res.RetryAfter > 200*time.Millisecond || res.Policies[0].Remaining != 0 {
		t.Fatalf("the 11th call should wait at most one interval (200 ms), got %+v", res)
	}
	if got, _ := redis.String(s.do("GET", l.Key("gina", "cell")), nil); len(got) < 19 {
		t.Fatalf("the key should hold a GCRA time in nanoseconds, got %q", got)
	}
}

func TestAWindowPolicyCountsTokensInItsWindow(t *testing.T) {
	s := startServer(t, false)
	sliding := Policy{Name: "sliding", Algorithm: Window, Limit: 5, Period: 10 * time.Second}
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{}, sliding)
	if res := limit(t, l, "frank", 5); !res.Allowed || res.Remaining != 0 || res.Policies[0].Window != 10 {
		t.Fatalf("want 5 of 5 taken in a 10 s window, got %+v", res)
	}
	if res := limit(t, l, "frank", 1); res.Allowed || res.RetryAfter <= 0 || res.RetryAfter > 20*time.Second {
		t.Fatalf("want refused with a retry-after within the window, got %+v", res)
	}
}

func TestARefusedCallIsServedFromTheDenyCache(t *testing.T) {
	s := startServer(t, false)
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{}, perMinute)
	for i := 0; i < 4; i++ {
		limit(t, l, "grace", 1)
	}
	before := s.commandCalls()["shield.limit"]
	res := limit(t, l, "grace", 1)
	if res.Allowed || !res.Cached || res.RetryAfter <= 0 || strings.Join(res.Violated, ",") != "per-minute" {
		t.Fatalf("want a refusal from the cache, got %+v", res)
	}
	if after := s.commandCalls()["shield.limit"]; after != before {
		t.Fatalf("the cache should not ask Redis: SHIELD.limit calls %d -> %d", before, after)
	}
	if l.Stats().CacheHits != 1 {
		t.Fatalf("want one cache hit, got %+v", l.Stats())
	}
	// Another cost and another key still go to Redis.
	if res := limit(t, l, "grace", 2); res.Cached {
		t.Fatal("a call of another cost is not in the cache")
	}
	if res := limit(t, l, "heidi", 1); res.Cached || !res.Allowed {
		t.Fatal("another key is not in the cache")
	}
}

func TestTheDenyCacheForgetsACallWhenItsRetryAfterPasses(t *testing.T) {
	s := startServer(t, false)
	fast := Policy{Name: "fast", Algorithm: Bucket, Limit: 10, Period: time.Second}
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{}, fast)
	limit(t, l, "ivan", 10)
	refused := limit(t, l, "ivan", 10)
	if refused.Allowed || refused.Cached {
		t.Fatalf("want a refusal from Redis, got %+v", refused)
	}
	if again := limit(t, l, "ivan", 10); !again.Cached {
		t.Fatalf("want the cache to refuse until the retry-after, got %+v", again)
	}
	time.Sleep(refused.RetryAfter) // the documented wait, not a guess
	if res := limit(t, l, "ivan", 10); res.Cached || !res.Allowed {
		t.Fatalf("after the retry-after the call should reach Redis and succeed, got %+v", res)
	}
}

func TestTheDenyCacheStaysWithinItsBound(t *testing.T) {
	c := newDenyCache(3)
	now := time.Now()
	for i := 0; i < 100; i++ {
		c.put(string(rune('a'+i%26))+strings.Repeat("x", i), now, now.Add(time.Hour), nil)
		if c.len() > 3 {
			t.Fatalf("the cache holds %d entries, more than its bound of 3", c.len())
		}
	}
	c.put("expired", now.Add(-2*time.Hour), now.Add(-time.Hour), nil)
	if _, ok := c.get("expired", now); ok {
		t.Fatal("an entry past its time should not be returned")
	}
	// When full, the expired entries go first.
	c = newDenyCache(3)
	c.put("live-1", now, now.Add(time.Hour), nil)
	c.put("old", now.Add(-2*time.Hour), now.Add(-time.Hour), nil)
	c.put("live-2", now, now.Add(time.Hour), nil)
	c.put("live-3", now, now.Add(time.Hour), nil)
	for _, k := range []string{"live-1", "live-2", "live-3"} {
		if _, ok := c.get(k, now); !ok {
			t.Fatalf("%s should have stayed: the expired entry goes first", k)
		}
	}
}

func TestAFloodFromOneClientCostsFewRedisCallsWithTheDenyCache(t *testing.T) {
	s := startServer(t, false)
	client := newClient(t, s.url())
	const calls = 2000
	flood := func(opts LimiterOptions, key string) (int64, int) {
		l := newLimiter(t, client, opts, perMinute)
		before := s.commandCalls()["shield.limit"]
		allowed := 0
		for i := 0; i < calls; i++ {
			if limit(t, l, key, 1).Allowed {
				allowed++
			}
		}
		return s.commandCalls()["shield.limit"] - before, allowed
	}
	withCache, allowedWith := flood(LimiterOptions{}, "flood-a")
	without, allowedWithout := flood(LimiterOptions{DenyCacheSize: -1}, "flood-b")
	t.Logf("a flood of %d calls from one client: %d SHIELD.limit calls with the deny cache, %d without", calls, withCache, without)
	if allowedWith != 3 || allowedWithout != 3 {
		t.Fatalf("both should allow exactly 3, got %d and %d", allowedWith, allowedWithout)
	}
	if withCache != 4 || without != calls {
		t.Fatalf("want 4 Redis calls with the cache and %d without, got %d and %d", calls, withCache, without)
	}
}

func TestAcquireSleepsTheRetryAfterAndThenSucceeds(t *testing.T) {
	s := startServer(t, false)
	fast := Policy{Name: "fast", Algorithm: Bucket, Limit: 4, Period: time.Second}
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{}, fast)
	limit(t, l, "judy", 4)
	refused := limit(t, l, "judy", 1)
	start := time.Now()
	res, err := l.Acquire(context.Background(), "judy", 1, 2*time.Second)
	waited := time.Since(start)
	if err != nil || !res.Allowed {
		t.Fatalf("Acquire should succeed within 2 s, got %+v, %v", res, err)
	}
	// One sleep of the retry-after plus at most a tenth of it as jitter, then one call.
	if waited < refused.RetryAfter-5*time.Millisecond || waited > refused.RetryAfter*11/10+500*time.Millisecond {
		t.Fatalf("waited %v for a retry-after of %v", waited, refused.RetryAfter)
	}
	if l.Stats().Calls != 4 {
		t.Fatalf("Acquire should not poll: want 4 calls in all, got %+v", l.Stats())
	}
}

func TestAcquireGivesUpAtOnceWhenTheWaitExceedsMaxWait(t *testing.T) {
	s := startServer(t, false)
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{}, perMinute)
	limit(t, l, "ken", 3)
	start := time.Now()
	res, err := l.Acquire(context.Background(), "ken", 1, time.Second)
	if !errors.Is(err, ErrWaitTooLong) || res.Allowed || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("want ErrWaitTooLong at once, got %+v, %v after %v", res, err, time.Since(start))
	}
}

type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) log(message string) { l.mu.Lock(); l.all = append(l.all, message); l.mu.Unlock() }
func (l *lines) count() int         { l.mu.Lock(); defer l.mu.Unlock(); return len(l.all) }

func TestAFailOpenPolicyAllowsWhileRedisIsDownAndTheDecisionIsCountedAndLoggedOnce(t *testing.T) {
	s := startServer(t, false)
	var logged lines
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{Logger: logged.log, FailureLogInterval: time.Hour}, perMinute)
	if res := limit(t, l, "leo", 1); !res.Allowed || res.Err != nil {
		t.Fatalf("want allowed by Redis, got %+v", res)
	}
	s.kill()
	for i := 0; i < 5; i++ {
		res, err := l.Limit(context.Background(), "leo", 1)
		if err == nil || res.Err == nil || !res.Allowed || res.Policies[0].Known || res.Remaining != -1 {
			t.Fatalf("want allowed by the failure policy with the error, got %+v, %v", res, err)
		}
		if res.RateLimitHeader() != "" || res.PolicyHeader() != `"per-minute";q=3;w=60` {
			t.Fatalf("without Redis only RateLimit-Policy is known, got %q / %q", res.PolicyHeader(), res.RateLimitHeader())
		}
	}
	if st := l.Stats(); st.FailOpen != 5 || st.FailClosed != 0 {
		t.Fatalf("want 5 fail-open decisions counted, got %+v", st)
	}
	if logged.count() != 1 || !strings.Contains(logged.all[0], "fail-open") {
		t.Fatalf("want one log line in the interval, got %q", logged.all)
	}
}

func TestAFailClosedPolicyRefusesWhileRedisIsDown(t *testing.T) {
	s := startServer(t, false)
	var logged lines
	strict := perMinute
	strict.OnFailure = FailClosed
	lenient := Policy{Name: "daily", Algorithm: Quota, Limit: 100, Calendar: Day}
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{Logger: logged.log, FailureLogInterval: 50 * time.Millisecond}, strict, lenient)
	limit(t, l, "mia", 1)
	s.kill()
	res, err := l.Limit(context.Background(), "mia", 1)
	if err == nil || res.Allowed || strings.Join(res.Violated, ",") != "per-minute" || res.RetryAfter != time.Second {
		t.Fatalf("want refused by the fail-closed policy only, retry after 1 s, got %+v", res)
	}
	time.Sleep(60 * time.Millisecond) // past the log interval
	l.Limit(context.Background(), "mia", 1)
	if st := l.Stats(); st.FailClosed != 2 || logged.count() != 2 {
		t.Fatalf("want 2 fail-closed decisions and 2 lines (one per interval), got %+v and %q", st, logged.all)
	}
}

func TestASlowRedisIsCutOffByTheCallTimeout(t *testing.T) {
	s := startServer(t, false)
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{Timeout: 100 * time.Millisecond, Logger: func(string) {}}, perMinute)
	limit(t, l, "nina", 1) // a pooled connection, ready
	sleeping := make(chan struct{})
	go func() { defer close(sleeping); s.do("DEBUG", "SLEEP", "2") }()
	waitFor(t, 5*time.Second, "DEBUG SLEEP to start", func() bool {
		c, err := redis.Dial("tcp", s.addr(), redis.DialReadTimeout(20*time.Millisecond))
		if err != nil {
			return false
		}
		defer c.Close()
		_, err = c.Do("PING")
		return err != nil // no answer: the server sleeps
	})
	start := time.Now()
	res, err := l.Limit(context.Background(), "nina", 1)
	took := time.Since(start)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !res.Allowed || took > time.Second {
		t.Fatalf("want a fail-open decision after the 100 ms timeout, got %+v, %v after %v", res, err, took)
	}
	<-sleeping
	if res := limit(t, l, "nina", 1); res.Err != nil || !res.Allowed {
		t.Fatalf("after the server wakes up, calls reach it again, got %+v", res)
	}
}

func TestAnErrorReplyIsDecidedByTheFailurePolicy(t *testing.T) {
	s := startServer(t, false)
	var logged lines
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{Logger: logged.log}, perMinute)
	s.do("RPUSH", l.Key("pat", "per-minute"), "not a bucket")
	res, err := l.Limit(context.Background(), "pat", 1)
	if err == nil || !strings.Contains(err.Error(), "WRONGTYPE") || !res.Allowed || l.Stats().FailOpen != 1 || logged.count() != 1 {
		t.Fatalf("want a fail-open decision naming WRONGTYPE, got %+v, %v", res, err)
	}
}

func TestTheCallersContextEndsACallSooner(t *testing.T) {
	s := startServer(t, false)
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{Logger: func(string) {}}, perMinute)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Limit(ctx, "olga", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}

func TestPoliciesAreCheckedWhenDeclared(t *testing.T) {
	c, _ := NewClient(Options{Addrs: []string{"127.0.0.1:1"}})
	bad := []Policy{
		{Name: "", Algorithm: Bucket, Limit: 1, Period: time.Second},
		{Name: "a b", Algorithm: Bucket, Limit: 1, Period: time.Second},
		{Name: "x", Algorithm: Bucket, Limit: 0, Period: time.Second},
		{Name: "x", Algorithm: Bucket, Limit: 1, Period: 1500 * time.Millisecond},
		{Name: "x", Algorithm: Window, Limit: 1, Period: time.Second, Burst: 2},
		{Name: "x", Algorithm: Quota, Limit: 1, Calendar: "WEEK"},
		{Name: "x", Algorithm: Quota, Limit: 1, Calendar: Day, Burst: 2},
		{Name: "a.b", Algorithm: Bucket, Limit: 1, Period: time.Second},
		{Name: strings.Repeat("n", 65), Algorithm: Bucket, Limit: 1, Period: time.Second},
		{Name: "burst", Algorithm: Bucket, Limit: 1, Period: time.Second},
		{Name: "Cost", Algorithm: Bucket, Limit: 1, Period: time.Second},
		{Name: "gcra", Algorithm: Window, Limit: 1, Period: time.Second},
		{Name: "DryRun", Algorithm: GCRA, Limit: 1, Period: time.Second},
		{Name: "x", Algorithm: GCRA, Limit: 2_000_000_001, Period: 2 * time.Second},
		{Name: "x", Algorithm: Algorithm(9), Limit: 1, Period: time.Second},
	}
	for _, p := range bad {
		if _, err := NewLimiter(c, []Policy{p}, LimiterOptions{}); err == nil {
			t.Errorf("policy %+v should be refused", p)
		}
	}
	if _, err := NewLimiter(c, []Policy{perMinute, perMinute}, LimiterOptions{}); err == nil {
		t.Error("two policies with one name should be refused")
	}
	good := []Policy{
		{Name: strings.Repeat("n", 64), Algorithm: Bucket, Limit: 1, Period: time.Second},
		{Name: "A-z_09", Algorithm: GCRA, Limit: 2_000_000_000, Period: 2 * time.Second, Burst: 3},
		{Name: "gcras", Algorithm: Window, Limit: 1, Period: time.Second},
	}
	if _, err := NewLimiter(c, good, LimiterOptions{}); err != nil {
		t.Errorf("%+v should be accepted: %v", good, err)
	}
	many := make([]Policy, 1001)
	for i := range many {
		many[i] = Policy{Name: "p" + strconv.Itoa(i), Algorithm: Bucket, Limit: 1, Period: time.Second}
	}
	if _, err := NewLimiter(c, many, LimiterOptions{}); err == nil {
		t.Error("more than 1000 policies should be refused (SHIELD.limit's most)")
	}
}

func TestURLsNameTheServerOrTheClusterSeeds(t *testing.T) {
	o, err := ParseURL("redis://:secret@h1:7001,h2/3?cluster=yes")
	if err != nil || len(o.Addrs) != 2 || o.Addrs[1] != "h2:6379" || o.Password != "secret" || o.DB != 3 || !o.Cluster {
		t.Fatalf("got %+v, %v", o, err)
	}
	if _, err := ParseURL("http://h1"); err == nil {
		t.Fatal("only redis:// URLs")
	}
}
