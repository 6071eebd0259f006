package redisshield

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// LimiterOptions configure a Limiter; the zero value is usable.
type LimiterOptions struct {
	// Prefix starts every key (default "shield:"). A policy's key is
	// <Prefix>{<key>}:<policy name>: the hash tag puts all policies of one key in one cluster slot.
	Prefix string
	// Timeout bounds every call to Redis (default 250ms); the caller's context may end it sooner.
	Timeout time.Duration
	// DenyCacheSize is how many refused (key, cost) pairs are remembered locally until their
	// retry-after passes (default 10000); a negative size turns the cache off.
	DenyCacheSize int
	// FailClosedRetryAfter is the Retry-After of a call refused because Redis did not answer
	// (default 1s).
	FailClosedRetryAfter time.Duration
	// FailureLogInterval is the least time between two log lines about failure decisions
	// (default 1 minute).
	FailureLogInterval time.Duration
	// Logger receives those lines (default log.Print).
	Logger func(message string)
}

// Limiter applies a set of policies to keys. It is safe for concurrent use.
type Limiter struct {
	client   *Client
	policies []Policy
	opts     LimiterOptions
	cache    *denyCache
	failures failureLog
	stats    struct{ calls, cacheHits, failOpen, failClosed, settlesLost int64 }
}

// NewLimiter checks the policies and makes a Limiter over client.
func NewLimiter(client *Client, policies []Policy, opts LimiterOptions) (*Limiter, error) {
	if client == nil || len(policies) == 0 {
		return nil, errors.New("redisshield: a limiter needs a client and at least one policy")
	}
	if len(policies) > maxPolicies {
		return nil, fmt.Errorf("redisshield: a limiter takes at most %d policies", maxPolicies)
	}
	names := map[string]bool{}
	for _, p := range policies {
		if err := p.validate(); err != nil {
			return nil, err
		}
		if names[p.Name] {
			return nil, fmt.Errorf("redisshield: policy name %q appears twice", p.Name)
		}
		names[p.Name] = true
	}
	if opts.Prefix == "" {
		opts.Prefix = "shield:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 250 * time.Millisecond
	}
	if opts.DenyCacheSize == 0 {
		opts.DenyCacheSize = 10000
	}
	if opts.FailClosedRetryAfter <= 0 {
		opts.FailClosedRetryAfter = time.Second
	}
	if opts.FailureLogInterval <= 0 {
		opts.FailureLogInterval = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = func(message string) { log.Print(message) }
	}
	l := &Limiter{client: client, policies: append([]Policy(nil), policies...), opts: opts}
	if opts.DenyCacheSize > 0 {
		l.cache = newDenyCache(opts.DenyCacheSize)
	}
	l.failures.interval, l.failures.logger = opts.FailureLogInterval, opts.Logger
	return l, nil
}

// Policies are the limiter's policies, in the order given.
func (l *Limiter) Policies() []Policy { return append([]Policy(nil), l.policies...) }

// Key is the Redis key of one policy for one caller's key.
func (l *Limiter) Key(key, policy string) string {
	return l.opts.Prefix + "{" + key + "}:" + policy
}

// PolicyResult is one policy's part of a decision.
type PolicyResult struct {
	Name    string
	Allowed bool
	// Known is false when Redis did not answer: the policy's failure mode decided.
	Known bool
	// Remaining is what is left after this call (when refused, what the policy holds now); -1
	// when not Known.
	Remaining int64
	// Quota and Window are RateLimit-Policy's q and w: the limit, and its window in seconds.
	Quota, Window int64
	// RetryAfter is 0 when allowed; the wait after which the call can succeed; negative when it
	// never can (the cost exceeds what the policy can ever hold).
	RetryAfter time.Duration
	// Reset is the time until the policy is back to its full limit.
	Reset time.Duration
}

// Result is a limiter's decision over all of its policies.
type Result struct {
	// Allowed is true when every policy allowed the call.
	Allowed bool
	// Remaining is the least Remaining of the policies that Redis answered for (-1: none).
	Remaining int64
	// RetryAfter is 0 when allowed; otherwise the longest wait of the policies that refused, or
	// negative when one of them never can allow this cost.
	RetryAfter time.Duration
	// Reset is the Reset of the policy with the least Remaining.
	Reset time.Duration
	// Violated names the policies that refused, in the limiter's order.
	Violated []string
	// Policies holds each policy's part, in the limiter's order.
	Policies []PolicyResult
	// Cached is true when the local deny cache refused the call without asking Redis.
	Cached bool
	// Err is why Redis did not decide (nil when it did): then each policy's failure mode did.
	Err error
}

// PolicyHeader is the value of the RateLimit-Policy header (draft-ietf-httpapi-ratelimit-headers):
// one `"<name>";q=<limit>;w=<seconds>` item per policy.
func (r Result) PolicyHeader() string {
	items := make([]string, 0, len(r.Policies))
	for _, p := range r.Policies {
		items = append(items, strconv.Quote(p.Name)+";q="+strconv.FormatInt(p.Quota, 10)+";w="+strconv.FormatInt(p.Window, 10))
	}
	return strings.Join(items, ", ")
}

// RateLimitHeader is the value of the RateLimit header: one `"<name>";r=<remaining>;t=<seconds>`
// item per policy Redis answered for (t: Reset rounded up to the second); "" when none.
func (r Result) RateLimitHeader() string {
	items := make([]string, 0, len(r.Policies))
	for _, p := range r.Policies {
		if p.Known {
			items = append(items, strconv.Quote(p.Name)+";r="+strconv.FormatInt(p.Remaining, 10)+";t="+strconv.FormatInt(ceilSeconds(p.Reset), 10))
		}
	}
	return strings.Join(items, ", ")
}

// RetryAfterSeconds is RetryAfter rounded up to whole seconds (the Retry-After header); -1 when
// no wait helps.
func (r Result) RetryAfterSeconds() int64 {
	if r.RetryAfter < 0 {
		return -1
	}
	return ceilSeconds(r.RetryAfter)
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// Stats count a limiter's decisions since it was made.
type Stats struct {
	Calls      int64 // Limit calls (Acquire's included)
	CacheHits  int64 // calls the deny cache refused without Redis
	FailOpen   int64 // calls allowed because Redis did not answer
	FailClosed int64 // calls refused because Redis did not answer
	// SettlesLost counts Reservation.Settle calls that Redis did not receive: their estimate stood.
	SettlesLost int64
}

// Stats returns the limiter's counters.
func (l *Limiter) Stats() Stats {
	return Stats{
		Calls:       atomic.LoadInt64(&l.stats.calls),
		CacheHits:   atomic.LoadInt64(&l.stats.cacheHits),
		FailOpen:    atomic.LoadInt64(&l.stats.failOpen),
		FailClosed:  atomic.LoadInt64(&l.stats.failClosed),
		SettlesLost: atomic.LoadInt64(&l.stats.settlesLost),
	}
}

// Limit takes cost tokens (at least 1) from every policy for key. When Redis does not answer
// within the timeout, each policy decides by its OnFailure, and err (also in Result.Err) says why.
func (l *Limiter) Limit(ctx context.Context, key string, cost int64) (Result, error) {
	if cost <= 0 {
		return Result{}, fmt.Errorf("redisshield: cost must be positive, not %d", cost)
	}
	atomic.AddInt64(&l.stats.calls, 1)
	now := time.Now()
	cacheKey := key + "\x00" + strconv.FormatInt(cost, 10)
	if l.cache != nil {
		if parts, ok := l.cache.get(cacheKey, now); ok {
			atomic.AddInt64(&l.stats.cacheHits, 1)
			res := combine(parts)
			res.Cached = true
			return res, nil
		}
	}
	callCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	parts, err := l.decide(callCtx, key, cost)
	cancel()
	if err != nil {
		return l.failed(err, now), err
	}
	res := combine(parts)
	if !res.Allowed && res.RetryAfter > 0 && l.cache != nil {
		l.cache.put(cacheKey, now, now.Add(res.RetryAfter), parts)
	}
	return res, nil
}

// failed is the decision of the policies' failure modes when Redis did not answer.
func (l *Limiter) failed(err error, now time.Time) Result {
	parts := make([]PolicyResult, len(l.policies))
	allowed := true
	for i, p := range l.policies {
		parts[i] = PolicyResult{Name: p.Name, Allowed: p.OnFailure == FailOpen, Remaining: -1,
			Quota: p.quota(), Window: p.window(now)}
		if !parts[i].Allowed {
			parts[i].RetryAfter = l.opts.FailClosedRetryAfter
			allowed = false
		}
	}
	res := combine(parts)
	res.Err = err
	if allowed {
		atomic.AddInt64(&l.stats.failOpen, 1)
		l.failures.record(failedOpen, err, now)
	} else {
		atomic.AddInt64(&l.stats.failClosed, 1)
		l.failures.record(failedClosed, err, now)
	}
	return res
}

func combine(parts []PolicyResult) Result {
	res := Result{Allowed: true, Remaining: -1, Policies: parts}
	for _, p := range parts {
		if p.Known && (res.Remaining < 0 || p.Remaining < res.Remaining) {
			res.Remaining, res.Reset = p.Remaining, p.Reset
		}
		if p.Allowed {
			continue
		}
		res.Allowed = false
		res.Violated = append(res.Violated, p.Name)
		if res.RetryAfter >= 0 && (p.RetryAfter < 0 || p.RetryAfter > res.RetryAfter) {
			res.RetryAfter = p.RetryAfter
		}
	}
	return res
}

// decide is the one place that talks to Redis: one SHIELD.limit call over every policy of key, on
// the node that serves the keys (they share the hash tag {key}), following MOVED and ASK. Redis
// decides all the policies at once and takes each one's cost only when all allow: a refused call
// takes nothing from any policy.
func (l *Limiter) decide(ctx context.Context, key string, cost int64) ([]PolicyResult, error) {
	return l.call(ctx, l.limitArgs(key, cost))
}

// limitArgs is the SHIELD.limit call that takes cost from every policy of key.
func (l *Limiter) limitArgs(key string, cost int64) []interface{} {
	return l.args(key, func(p Policy) []interface{} { return []interface{}{"COST", p.cost(cost)} })
}

// args is a SHIELD.limit call over every policy of key, each policy's words ending with tail(p).
func (l *Limiter) args(key string, tail func(p Policy) []interface{}) []interface{} {
	return l.policyArgs(l.policies, key, tail)
}

// policyArgs is a SHIELD.limit call over policies (some of the limiter's) of key, each policy's
// words ending with tail(p).
func (l *Limiter) policyArgs(policies []Policy, key string, tail func(p Policy) []interface{}) []interface{} {
	args := make([]interface{}, 0, 3+len(policies)*10)
	args = append(args, "SHIELD.limit", len(policies))
	for _, p := range policies {
		args = append(args, l.Key(key, p.Name))
	}
	for _, p := range policies {
		args = append(args, p.Name)
		switch p.Algorithm {
		case Bucket, GCRA:
			name := "BUCKET"
			if p.Algorithm == GCRA {
				name = "GCRA"
			}
			args = append(args, name, p.Limit, int64(p.Period/time.Second))
			if p.Burst > 0 {
				args = append(args, "BURST", p.Burst)
			}
		case Window:
			args = append(args, "WINDOW", p.Limit, int64(p.Period/time.Second))
		case Quota:
			args = append(args, "QUOTA", p.Limit, string(p.Calendar))
		}
		args = append(args, tail(p)...)
	}
	return args
}

// call sends one SHIELD.limit call (args: its words, the keys from the third on) to the node that
// serves its keys and reads its reply.
func (l *Limiter) call(ctx context.Context, args []interface{}) ([]PolicyResult, error) {
	return l.callPolicies(ctx, l.policies, args)
}

// callPolicies is call for a SHIELD.limit call over policies (some of the limiter's, in order).
func (l *Limiter) callPolicies(ctx context.Context, policies []Policy, args []interface{}) ([]PolicyResult, error) {
	replies, err := l.client.do(ctx, []command{{key: args[2].(string), args: args}})
	if err != nil {
		return nil, err
	}
	parts, err := parseLimit(policies, replies[0])
	if err != nil {
		return nil, fmt.Errorf("redisshield: SHIELD.limit: %w", err)
	}
	return parts, nil
}

// parseLimit reads SHIELD.limit's reply (RESP2: a flat field/value array whose policies field
// holds one flat field/value array per policy, in the order sent).
func parseLimit(policies []Policy, reply interface{}) ([]PolicyResult, error) {
	if replyErr, isErr := reply.(redis.Error); isErr {
		return nil, replyErr
	}
	top, err := fieldsOf(reply)
	if err != nil {
		return nil, err
	}
	list, ok := top["policies"].([]interface{})
	if !ok || len(list) != len(policies) {
		return nil, fmt.Errorf("reply %v has not %d policies", reply, len(policies))
	}
	allowed, err := asInt(top["allowed"])
	if err != nil {
		return nil, fmt.Errorf("reply %v: allowed: %w", reply, err)
	}
	parts := make([]PolicyResult, len(policies))
	all := true
	for i, p := range policies {
		fields, err := fieldsOf(list[i])
		if err != nil {
			return nil, err
		}
		if name := asString(fields["name"]); name != p.Name {
			return nil, fmt.Errorf("policy %d of the reply is %q, not %q", i+1, name, p.Name)
		}
		n := map[string]int64{}
		for _, field := range []string{"allowed", "remaining", "limit", "window", "reset_after_ms", "retry_after_ms"} {
			if n[field], err = asInt(fields[field]); err != nil {
				return nil, fmt.Errorf("policy %s: %s: %w", p.Name, field, err)
			}
		}
		parts[i] = PolicyResult{Name: p.Name, Allowed: n["allowed"] == 1, Known: true,
			Remaining: n["remaining"], Quota: n["limit"], Window: n["window"],
			RetryAfter: time.Duration(n["retry_after_ms"]) * time.Millisecond,
			Reset:      time.Duration(n["reset_after_ms"]) * time.Millisecond}
		if n["retry_after_ms"] < 0 {
			parts[i].RetryAfter = -1
		}
		all = all && parts[i].Allowed
	}
	if all != (allowed == 1) {
		return nil, fmt.Errorf("reply %v: allowed is %d but its policies say %v", reply, allowed, all)
	}
	return parts, nil
}

// fieldsOf reads a flat field/value array into a map.
func fieldsOf(reply interface{}) (map[string]interface{}, error) {
	values, ok := reply.([]interface{})
	if !ok || len(values)%2 != 0 {
		return nil, fmt.Errorf("unexpected reply %v", reply)
	}
	fields := make(map[string]interface{}, len(values)/2)
	for i := 0; i < len(values); i += 2 {
		fields[asString(values[i])] = values[i+1]
	}
	return fields, nil
}

// ErrWaitTooLong is Acquire's error when the call cannot succeed within maxWait.
var ErrWaitTooLong = errors.New("redisshield: the wait for the limit exceeds maxWait")

// Acquire is Limit that waits: while the call is refused and its retry-after (plus a jitter of
// up to a tenth of it, at most 100ms) ends within maxWait of the start, it sleeps that long and
// tries again. It returns the last Result, with ErrWaitTooLong when maxWait is not enough (or no
// wait can help), or ctx's error when ctx ends first.
func (l *Limiter) Acquire(ctx context.Context, key string, cost int64, maxWait time.Duration) (Result, error) {
	deadline := time.Now().Add(maxWait)
	for {
		res, err := l.Limit(ctx, key, cost)
		if res.Allowed || (err != nil && res.Policies == nil) {
			return res, err
		}
		now := time.Now()
		if res.RetryAfter < 0 || now.Add(res.RetryAfter).After(deadline) {
			return res, ErrWaitTooLong
		}
		wait := res.RetryAfter + jitter(res.RetryAfter)
		if now.Add(wait).After(deadline) {
			wait = deadline.Sub(now)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return res, ctx.Err()
		case <-timer.C:
		}
	}
}

func jitter(wait time.Duration) time.Duration {
	most := wait / 10
	if most > 100*time.Millisecond {
		most = 100 * time.Millisecond
	}
	if most <= 0 {
		return 0
	}
	return time.Duration(rand.Int63n(int64(most) + 1))
}

// failureLog logs failure decisions and lost settles at most once per interval, with how many
// there were.
type failureLog struct {
	interval time.Duration
	logger   func(string)
	mu       sync.Mutex
	last     time.Time
	open     int64
	closed   int64
	lost     int64
}

type failure int

const (
	failedOpen   failure = iota // a call allowed without Redis
	failedClosed                // a call refused without Redis
	settleLost                  // a settle Redis did not receive
)

func (f *failureLog) record(kind failure, err error, now time.Time) {
	f.mu.Lock()
	switch kind {
	case failedOpen:
		f.open++
	case failedClosed:
		f.closed++
	default:
		f.lost++
	}
	if !f.last.IsZero() && now.Sub(f.last) < f.interval {
		f.mu.Unlock()
		return
	}
	message := fmt.Sprintf("redisshield: Redis did not decide (%v): %d calls allowed (fail-open) and %d refused (fail-closed) since the last such line",
		err, f.open, f.closed)
	if f.lost > 0 {
		message += fmt.Sprintf(", and %d settles lost (their estimates stood)", f.lost)
	}
	f.last, f.open, f.closed, f.lost = now, 0, 0, 0
	f.mu.Unlock()
	f.logger(message)
}

// denyCache remembers refused calls until their retry-after, at most size of them.
type denyCache struct {
	mu      sync.Mutex
	size    int
	entries map[string]denyEntry
}

type denyEntry struct {
	stored, until time.Time
	parts         []PolicyResult
}

func newDenyCache(size int) *denyCache {
	return &denyCache{size: size, entries: make(map[string]denyEntry)}
}

func (c *denyCache) get(key string, now time.Time) ([]PolicyResult, bool) {
	c.mu.Lock()
	entry, ok := c.entries[key]
	if ok && !now.Before(entry.until) {
		delete(c.entries, key)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	elapsed := now.Sub(entry.stored)
	parts := append([]PolicyResult(nil), entry.parts...)
	for i := range parts {
		if parts[i].RetryAfter > 0 {
			parts[i].RetryAfter = maxDuration(parts[i].RetryAfter-elapsed, time.Millisecond)
		}
		parts[i].Reset = maxDuration(parts[i].Reset-elapsed, 0)
	}
	return parts, true
}

func (c *denyCache) put(key string, now, until time.Time, parts []PolicyResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, present := c.entries[key]; !present && len(c.entries) >= c.size {
		for k, e := range c.entries { // drop what has expired, then anything, until there is room
			if !now.Before(e.until) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.size {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = denyEntry{stored: now, until: until, parts: parts}
}

func (c *denyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func maxDuration(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}
