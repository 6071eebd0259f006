package redisshield

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// long is a refill period so slow that no test sees a token come back.
const long = 1_000_000 * time.Second

func reserve(t testing.TB, l *Limiter, key string, estimate int64) *Reservation {
	t.Helper()
	r, err := l.Reserve(context.Background(), key, estimate)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func settle(t testing.TB, r *Reservation, actual int64) Result {
	t.Helper()
	res, err := r.Settle(context.Background(), actual)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func remainings(res Result) []int64 {
	var all []int64
	for _, p := range res.Policies {
		all = append(all, p.Remaining)
	}
	return all
}

func TestAReservationOf10SettledAt4Gives6BackInOneShieldLimitCall(t *testing.T) {
	s := startServer(t, false)
	for _, algorithm := range []Algorithm{Bucket, GCRA} {
		l := newLimiter(t, newClient(t, s.url()), LimiterOptions{},
			Policy{Name: "tokens", Algorithm: algorithm, Limit: 100, Period: long})
		key := "k-" + algorithm.String()
		r := reserve(t, l, key, 10)
		if !r.Allowed || r.Remaining != 90 || r.Estimate != 10 {
			t.Fatalf("%v: want 10 reserved of 100, got %+v", algorithm, r.Result)
		}
		before := s.commandCalls()
		res := settle(t, r, 4)
		after := s.commandCalls()
		if !res.Allowed || res.Remaining != 96 || res.Err != nil {
			t.Fatalf("%v: settling 10 at 4 should leave 96, got %+v", algorithm, res)
		}
		if after["shield.limit"]-before["shield.limit"] != 1 {
			t.Fatalf("%v: want one SHIELD.limit call for the settle, got %v then %v", algorithm, before, after)
		}
		if res := limit(t, l, key, 96); !res.Allowed || res.Remaining != 0 {
			t.Fatalf("%v: exactly 96 should be there, got %+v", algorithm, res)
		}
	}
}

func TestSettlingAboveTheEstimateLeavesTheBucketInDebtAndTheNextCallWaitsOutTheDebt(t *testing.T) {
	s := startServer(t, false)
	for _, algorithm := range []Algorithm{Bucket, GCRA} {
		l := newLimiter(t, newClient(t, s.url()), LimiterOptions{DenyCacheSize: -1},
			Policy{Name: "tokens", Algorithm: algorithm, Limit: 10, Period: 10 * time.Second}) // 1 a second
		key := "k-" + algorithm.String()
		r := reserve(t, l, key, 10)
		if res := settle(t, r, 15); !res.Allowed || res.Remaining != 0 { // 5 owed
			t.Fatalf("%v: a settle never refuses, got %+v", algorithm, res)
		}
		res := limit(t, l, key, 1)
		if res.Allowed || res.RetryAfter < 5*time.Second || res.RetryAfter > 6*time.Second {
			t.Fatalf("%v: want refused for the debt (5 s) and one token (1 s), got %+v", algorithm, res)
		}
	}
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{DenyCacheSize: -1},
		Policy{Name: "tokens", Algorithm: Bucket, Limit: 10, Period: 10 * time.Second})
	settle(t, reserve(t, l, "bounded", 1), 1000)
	if res := limit(t, l, "bounded", 1); res.Allowed || res.RetryAfter < 10*time.Second || res.RetryAfter > 11*time.Second {
		t.Fatalf("the debt is at most one period's refill (10 s), got %+v", res)
	}
	if ttl, _ := redis.Int64(s.do("PTTL", l.Key("bounded", "tokens")), nil); ttl <= 19_000 || ttl > 20_000 {
		t.Fatalf("the bucket's key should live its fill time and the debt, 20 s, not %d ms", ttl)
	}
}

func TestSettlingTwiceIsAnErrorAndSendsNothing(t *testing.T) {
	s := startServer(t, false)
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{}, Policy{Name: "tokens", Algorithm: Bucket, Limit: 100, Period: long})
	r := reserve(t, l, "k", 10)
	settle(t, r, 4)
	before := s.commandCalls()
	if _, err := r.Settle(context.Background(), 4); !errors.Is(err, ErrAlreadySettled) {
		t.Fatalf("want ErrAlreadySettled, got %v", err)
	}
	if after := s.commandCalls(); after["shield.limit"] != before["shield.limit"] {
		t.Fatalf("a second settle should send nothing, got %v then %v", before, after)
	}
	if _, err := r.Settle(context.Background(), -1); err == nil || !strings.Contains(err.Error(), "0 or more") {
		t.Fatalf("a negative actual cost is an error, got %v", err)
	}
	if res := limit(t, l, "k", 1); res.Remaining != 95 {
		t.Fatalf("settled once, 6 back and not 12: want 95 left, got %+v", res)
	}
}

func TestARefusedReservationIsRefusedAsLimitRefusesAndHasNothingToSettle(t *testing.T) {
	s := startServer(t, false)
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{},
		Policy{Name: "tokens", Algorithm: Bucket, Limit: 10, Period: 10 * time.Second},
		Policy{Name: "daily", Algorithm: Quota, Limit: 100, Calendar: Day})
	r := reserve(t, l, "k", 11) // more than the bucket ever holds
	if r.Allowed || strings.Join(r.Violated, ",") != "tokens" || r.RetryAfter >= 0 {
		t.Fatalf("want refused by tokens, no wait helping, got %+v", r.Result)
	}
	if _, err := r.Settle(context.Background(), 3); !errors.Is(err, ErrNothingReserved) {
		t.Fatalf("want ErrNothingReserved, got %v", err)
	}
	if n, _ := redis.Int64(s.do("DBSIZE"), nil); n != 0 {
		t.Fatalf("the refused reservation took nothing: want no key, got %d", n)
	}
	if r, err := l.Reserve(context.Background(), "k", 0); err == nil || r != nil {
		t.Fatalf("an estimate of 0 is an error, without a reservation; got %+v, %v", r, err)
	}
}

// remainingNow is what each of policies (windows and quotas of l) has left for key now, read with
// SHIELD.limit_ro and COST 0.
func remainingNow(t testing.TB, s *server, l *Limiter, key string, policies ...Policy) []int64 {
	t.Helper()
	args := l.policyArgs(policies, key, func(Policy) []interface{} { return []interface{}{"COST", 0} })
	parts, err := parseLimit(policies, s.do("SHIELD.limit_ro", args[1:]...))
	if err != nil {
		t.Fatal(err)
	}
	var left []int64
	for _, p := range parts {
		left = append(left, p.Remaining)
	}
	return left
}

// tokensRefunded is SHIELD.stats' tokens_refunded.
func tokensRefunded(t testing.TB, s *server) int64 {
	t.Helper()
	stats, err := redis.Int64Map(s.do("SHIELD.stats"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return stats["tokens_refunded"]
}

// untilTheWindowCountsNothing waits until the server counts nothing in window for r's key and r's
// own clock says its estimate stopped counting there.
func untilTheWindowCountsNothing(t testing.TB, s *server, l *Limiter, r *Reservation, window Policy) {
	t.Helper()
	waitFor(t, 10*time.Second, "the window to count nothing", func() bool {
		return remainingNow(t, s, l, r.key, window)[0] == window.Limit && !time.Now().Before(r.countedUntil[window.Name])
	})
}

func TestAWindowAndAQuotaSettledLowerGetTheDifferenceBackInOneRefundCallBeforeTheSettle(t *testing.T) {
	s := startServer(t, false)
	window := Policy{Name: "sliding", Algorithm: Window, Limit: 10, Period: time.Minute}
	quota := Policy{Name: "daily", Algorithm: Quota, Limit: 10, Calendar: Day}
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{DenyCacheSize: -1},
		Policy{Name: "tokens", Algorithm: Bucket, Limit: 100, Period: long}, window, quota,
		Policy{Name: "bytes", Algorithm: GCRA, Limit: 1000, Period: long, Cost: 10})
	r := reserve(t, l, "k", 10)
	if got := fmt.Sprint(remainings(r.Result)); got != "[90 0 0 900]" {
		t.Fatalf("want [90 0 0 900] after the reservation, got %v", got)
	}
	before, refunded := s.commandCalls()["shield.limit"], tokensRefunded(t, s)
	res := settle(t, r, 4) // the full window and quota do not refuse it: a settle never refuses
	if calls := s.commandCalls()["shield.limit"] - before; calls != 2 {
		t.Fatalf("want a REFUND of the window and the quota, then the settle: 2 calls, got %d", calls)
	}
	if got := tokensRefunded(t, s) - refunded; got != 6+6+6+60 {
		t.Fatalf("want 6 refunded to each of the bucket, window and quota, and 60 to the GCRA, got %d", got)
	}
	if got := fmt.Sprint(remainings(res)); !res.Allowed || got != "[96 6 6 960]" {
		t.Fatalf("want [96 6 6 960] after the settle, got %v (%+v)", got, res)
	}
	if got := fmt.Sprint(remainingNow(t, s, l, "k", window, quota)); got != "[6 6]" {
		t.Fatalf("want the window and the quota at [6 6], got %v", got)
	}
	if daily, _ := redis.String(s.do("GET", l.Key("k", "daily")), nil); daily != "4" {
		t.Fatalf("the quota counts the actual cost: want 4, got %q", daily)
	}
}

func TestAWindowAndAQuotaSettledHigherOrEqualKeepTheEstimateAndNoRefundIsSent(t *testing.T) {
	s := startServer(t, false)
	window := Policy{Name: "sliding", Algorithm: Window, Limit: 10, Period: time.Minute}
	quota := Policy{Name: "daily", Algorithm: Quota, Limit: 10, Calendar: Day}
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{DenyCacheSize: -1}, window, quota)
	higher, equal := reserve(t, l, "k", 4), reserve(t, l, "k", 2)
	before := s.commandCalls()["shield.limit"]
	settle(t, higher, 9)
	settle(t, equal, 2)
	if calls := s.commandCalls()["shield.limit"] - before; calls != 2 {
		t.Fatalf("want the two settles and no REFUND, got %d calls", calls)
	}
	if got := fmt.Sprint(remainingNow(t, s, l, "k", window, quota)); got != "[4 4]" {
		t.Fatalf("want the estimates counted (6), not the overrun: [4 4], got %v", got)
	}
}

// reservedBeforeTheWindowRolled reserves 5 on "k", waits until the window's charge no longer
// counts, then takes 3 in the window's new period: a settle now must not refund the window.
func reservedBeforeTheWindowRolled(t testing.TB, s *server, client *Client, l *Limiter, window Policy) *Reservation {
	r := reserve(t, l, "k", 5)
	untilTheWindowCountsNothing(t, s, l, r, window)
	if res := limit(t, newLimiter(t, client, LimiterOptions{DenyCacheSize: -1}, window), "k", 3); !res.Allowed {
		t.Fatalf("want 3 counted in the window's new period, got %+v", res)
	}
	return r
}

func TestAWindowWhosePeriodEndedBeforeTheSettleIsNotRefundedButAQuotaStillCountingIs(t *testing.T) {
	s := startServer(t, false)
	window := Policy{Name: "second", Algorithm: Window, Limit: 10, Period: time.Second}
	quota := Policy{Name: "daily", Algorithm: Quota, Limit: 100, Calendar: Day}
	client := newClient(t, s.url())
	l := newLimiter(t, client, LimiterOptions{DenyCacheSize: -1}, window, quota)
	r := reservedBeforeTheWindowRolled(t, s, client, l, window)
	before, refunded := s.commandCalls()["shield.limit"], tokensRefunded(t, s)
	res := settle(t, r, 1)
	if calls := s.commandCalls()["shield.limit"] - before; calls != 2 {
		t.Fatalf("want a REFUND of the quota alone, then the settle: 2 calls, got %d", calls)
	}
	if got := tokensRefunded(t, s) - refunded; got != 4 {
		t.Fatalf("want the quota's 4 refunded and nothing credited to the window's new period, got %d", got)
	}
	if got := remainingNow(t, s, l, "k", quota)[0]; got != 99 || res.Policies[1].Remaining != 99 {
		t.Fatalf("want the quota at 99, got %d (%+v)", got, res)
	}
}

func TestASettleAfterEveryRefundablePeriodEndedSendsNoRefundCall(t *testing.T) {
	s := startServer(t, false)
	window := Policy{Name: "second", Algorithm: Window, Limit: 10, Period: time.Second}
	client := newClient(t, s.url())
	l := newLimiter(t, client, LimiterOptions{DenyCacheSize: -1}, window,
		Policy{Name: "tokens", Algorithm: Bucket, Limit: 100, Period: long})
	r := reservedBeforeTheWindowRolled(t, s, client, l, window)
	before, refunded := s.commandCalls()["shield.limit"], tokensRefunded(t, s)
	res := settle(t, r, 1)
	if calls := s.commandCalls()["shield.limit"] - before; calls != 1 {
		t.Fatalf("want the settle alone, got %d calls", calls)
	}
	if got := tokensRefunded(t, s) - refunded; got != 4 {
		t.Fatalf("want the bucket's SETTLE (4) only, got %d", got)
	}
	if got := res.Policies[1].Remaining; got != 99 {
		t.Fatalf("want the bucket at 99 after the settle, got %d (%+v)", got, res)
	}
}

func TestASettleWhileRedisIsDownIsLostCountedAndLogged(t *testing.T) {
	s := startServer(t, false)
	var logged lines
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{Logger: logged.log, FailureLogInterval: time.Hour},
		Policy{Name: "tokens", Algorithm: Bucket, Limit: 100, Period: long})
	r := reserve(t, l, "k", 10)
	s.kill()
	res, err := r.Settle(context.Background(), 4)
	if err == nil || res.Err == nil || !res.Allowed || res.Policies[0].Known || res.Remaining != -1 {
		t.Fatalf("want a lost settle, allowed, with the error, got %+v, %v", res, err)
	}
	if st := l.Stats(); st.SettlesLost != 1 || st.FailOpen != 0 || st.FailClosed != 0 {
		t.Fatalf("want one lost settle counted, got %+v", st)
	}
	if logged.count() != 1 || !strings.Contains(logged.all[0], "1 settles lost") {
		t.Fatalf("want one log line naming the lost settle, got %q", logged.all)
	}
	if _, err := r.Settle(context.Background(), 4); !errors.Is(err, ErrAlreadySettled) {
		t.Fatalf("a lost settle is still a settle: want ErrAlreadySettled, got %v", err)
	}
}

func TestAReservationDecidedWithoutRedisSendsNothingWhenSettled(t *testing.T) {
	s := startServer(t, false)
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{Logger: func(string) {}},
		Policy{Name: "tokens", Algorithm: Bucket, Limit: 100, Period: long})
	s.kill()
	r, err := l.Reserve(context.Background(), "k", 10)
	if err == nil || r == nil || !r.Allowed || r.Err == nil {
		t.Fatalf("want a fail-open reservation with the error, got %+v, %v", r, err)
	}
	res, err := r.Settle(context.Background(), 4)
	if err != nil || res.Err != r.Err || l.Stats().SettlesLost != 0 {
		t.Fatalf("want the reservation's own result back and nothing lost, got %+v, %v", res, err)
	}
}

func TestTheSettleCallTheDocsShowIsTheOneTheLimiterBuilds(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "clients", "go.md"))
	if err != nil {
		t.Fatal(err)
	}
	client, err := NewClientFromURL("redis://127.0.0.1:1") // never dialled: the words only
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	l := newLimiter(t, client, LimiterOptions{},
		Policy{Name: "llm-tokens", Algorithm: Bucket, Limit: 10000, Period: time.Hour},
		Policy{Name: "daily-tokens", Algorithm: Quota, Limit: 100000, Calendar: Day})
	text := strings.Join(strings.Fields(string(doc)), " ")
	sent := strings.Trim(fmt.Sprint(l.settleArgs("user:42", 1000, 400)), "[]")
	if !strings.Contains(text, "`"+sent+"`") {
		t.Fatalf("docs/clients/go.md should show the settle call `%s`", sent)
	}
	quota := l.policies[1:]
	refund := strings.Trim(fmt.Sprint(l.refundArgs(quota, "user:42", 600)), "[]")
	if !strings.Contains(text, "`"+refund+"`") {
		t.Fatalf("docs/clients/go.md should show the REFUND call `%s`", refund)
	}
}

func TestTheDenyCacheDoesNotLearnOfTokensASettleGivesBack(t *testing.T) {
	s := startServer(t, false)
	l := newLimiter(t, newClient(t, s.url()), LimiterOptions{}, Policy{Name: "tokens", Algorithm: Bucket, Limit: 10, Period: long})
	r := reserve(t, l, "k", 10)
	if res := limit(t, l, "k", 1); res.Allowed || res.Cached {
		t.Fatalf("want refused by Redis, got %+v", res)
	}
	if res := settle(t, r, 4); res.Remaining != 6 {
		t.Fatalf("want 6 back, got %+v", res)
	}
	if res := limit(t, l, "k", 1); res.Allowed || !res.Cached {
		t.Fatalf("want still refused by the deny cache, got %+v", res)
	}
	if res := limit(t, l, "k", 2); !res.Allowed || res.Remaining != 4 {
		t.Fatalf("another cost asks Redis, which has the tokens back; got %+v", res)
	}
}
