package redisshield

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrAlreadySettled is Settle's error for a reservation settled before: it sends nothing.
var ErrAlreadySettled = errors.New("redisshield: the reservation was already settled")

// ErrNothingReserved is Settle's error for a refused reservation: it took nothing.
var ErrNothingReserved = errors.New("redisshield: the reservation was refused: it holds nothing to settle")

// Reservation is an estimate taken by Limiter.Reserve, to settle once the real cost is known. Its
// Result is the reservation's decision. It is safe for concurrent use; Settle succeeds once.
type Reservation struct {
	// Result is the reservation's decision, as Limit decides it; when not Allowed, there is
	// nothing to settle.
	Result
	// Estimate is the cost reserved.
	Estimate int64

	limiter *Limiter
	key     string
	mu      sync.Mutex
	settled bool
	// countedUntil is, per Window and Quota policy, when its estimate stops counting: the arrival
	// of the reserve's reply plus the policy's Reset in it (time.Now's monotonic reading).
	countedUntil map[string]time.Time
}

// Reserve takes estimate (at least 1) from every policy for key, as Limit(ctx, key, estimate)
// does (one SHIELD.limit call, the deny cache, the failure policy), for work whose cost is known
// only when it ends; Settle then settles it at the real cost. The Reservation is returned with
// Limit's error when Redis did not answer (its Result is then the failure policy's decision), and
// is nil only when estimate is not positive. A reservation never settled keeps the estimate.
func (l *Limiter) Reserve(ctx context.Context, key string, estimate int64) (*Reservation, error) {
	res, err := l.Limit(ctx, key, estimate)
	if err != nil && res.Policies == nil {
		return nil, err
	}
	r := &Reservation{Result: res, Estimate: estimate, limiter: l, key: key, countedUntil: map[string]time.Time{}}
	if arrived := time.Now(); err == nil && !res.Cached {
		for i, p := range l.policies {
			if p.Algorithm == Window || p.Algorithm == Quota {
				r.countedUntil[p.Name] = arrived.Add(res.Policies[i].Reset)
			}
		}
	}
	return r, err
}

// refunded are the Window and Quota policies a settle at actual gives estimate - actual back to:
// none unless actual is lower; then those whose estimate still counts (their window or calendar
// period has not ended since the reserve: a refund after it would credit the next one).
func (r *Reservation) refunded(actual int64) []Policy {
	if actual >= r.Estimate {
		return nil
	}
	var policies []Policy
	now := time.Now()
	for _, p := range r.limiter.policies {
		if until, ok := r.countedUntil[p.Name]; ok && now.Before(until) {
			policies = append(policies, p)
		}
	}
	return policies
}

// Settle settles the reservation at actual (0 or more) in one SHIELD.limit call: each Bucket and
// GCRA policy gets SETTLE <estimate> <actual> (times its Cost), so it gets back what the estimate
// exceeded, or gives what the work cost beyond it even when it lacks it (a debt of at most one
// period's refill, which refuses the next calls until it is repaid); each Window and Quota policy
// gets COST 0. A Window or Quota policy settled lower gets estimate - actual (times its Cost) back
// in one SHIELD.limit REFUND call of those policies alone, sent before the settle call, but only
// while its estimate still counts (until the reserve's reply plus the policy's Reset in it: once
// its window or calendar period has ended, a refund would credit the next one); with none to
// refund, no REFUND call is sent. Settled higher or equal, it keeps the estimate. A settle never
// refuses: the Result, with each policy's numbers after the settle call, is Allowed.
//
// A second Settle returns ErrAlreadySettled, and Settle of a refused reservation
// ErrNothingReserved; both send nothing. A reservation that Redis did not make (Result.Err set,
// allowed by the failure policy) has nothing in Redis to settle: Settle returns its Result. When
// Redis does not answer (to the REFUND call or the settle call), the settle is lost: it is not
// retried, the estimate stands, Stats().SettlesLost counts it, the failure log reports it, and the
// error is returned (also in Result.Err).
func (r *Reservation) Settle(ctx context.Context, actual int64) (Result, error) {
	if actual < 0 {
		return Result{}, fmt.Errorf("redisshield: actual cost must be 0 or more, not %d", actual)
	}
	r.mu.Lock()
	switch {
	case r.settled:
		r.mu.Unlock()
		return Result{}, ErrAlreadySettled
	case !r.Allowed:
		r.mu.Unlock()
		return Result{}, ErrNothingReserved
	}
	r.settled = true
	r.mu.Unlock()
	if r.Err != nil {
		return r.Result, nil
	}
	l := r.limiter
	var parts []PolicyResult
	var err error
	if refunded := r.refunded(actual); len(refunded) > 0 {
		callCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
		_, err = l.callPolicies(callCtx, refunded, l.refundArgs(refunded, r.key, r.Estimate-actual))
		cancel()
	}
	if err == nil {
		callCtx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
		parts, err = l.call(callCtx, l.settleArgs(r.key, r.Estimate, actual))
		cancel()
	}
	if err != nil {
		now := time.Now()
		atomic.AddInt64(&l.stats.settlesLost, 1)
		l.failures.record(settleLost, err, now)
		parts = make([]PolicyResult, len(l.policies))
		for i, p := range l.policies {
			parts[i] = PolicyResult{Name: p.Name, Allowed: true, Remaining: -1, Quota: p.quota(), Window: p.window(now)}
		}
		res := combine(parts)
		res.Err = err
		return res, err
	}
	return combine(parts), nil
}

// refundArgs is the SHIELD.limit call that gives tokens (times each policy's Cost) back to
// policies of key: COST <n> on each, and REFUND.
func (l *Limiter) refundArgs(policies []Policy, key string, tokens int64) []interface{} {
	args := l.policyArgs(policies, key, func(p Policy) []interface{} { return []interface{}{"COST", p.cost(tokens)} })
	return append(args, "REFUND")
}

// settleArgs is the SHIELD.limit call that settles a reservation of reserved at actual for key.
func (l *Limiter) settleArgs(key string, reserved, actual int64) []interface{} {
	return l.args(key, func(p Policy) []interface{} {
		if p.Algorithm == Bucket || p.Algorithm == GCRA {
			return []interface{}{"SETTLE", p.cost(reserved), p.cost(actual)}
		}
		return []interface{}{"COST", 0}
	})
}
