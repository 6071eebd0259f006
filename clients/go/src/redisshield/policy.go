package redisshield

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Algorithm is how a policy counts.
type Algorithm int

const (
	// Bucket is a token bucket (SHIELD.absorb): Limit tokens per Period, holding at most Burst
	// (Limit when Burst is 0).
	Bucket Algorithm = iota
	// Window is a sliding window (SHIELD.window): about Limit tokens in any Period.
	Window
	// Quota is a calendar quota (SHIELD.quota): Limit tokens per UTC Hour, Day or Month.
	Quota
	// GCRA is the generic cell rate algorithm (SHIELD.gcra, CL.THROTTLE's keys): Limit tokens per
	// Period, at most Burst at once (Limit when Burst is 0), exact to the nanosecond.
	GCRA
)

func (a Algorithm) String() string {
	switch a {
	case Bucket:
		return "bucket"
	case Window:
		return "window"
	case Quota:
		return "quota"
	case GCRA:
		return "gcra"
	}
	return "Algorithm(" + strconv.Itoa(int(a)) + ")"
}

// Calendar is the period of a Quota policy.
type Calendar string

const (
	Hour  Calendar = "HOUR"
	Day   Calendar = "DAY"
	Month Calendar = "MONTH"
)

// Failure says what a policy decides when Redis cannot answer in time.
type Failure int

const (
	// FailOpen lets the call through when Redis is down or slow.
	FailOpen Failure = iota
	// FailClosed refuses the call when Redis is down or slow.
	FailClosed
)

func (f Failure) String() string {
	if f == FailClosed {
		return "fail-closed"
	}
	return "fail-open"
}

// Policy is one limit, declared once and applied to many keys.
type Policy struct {
	// Name names the policy in keys, in the RateLimit headers and in Violated: 1 to 64 letters,
	// digits, "-" and "_", and not one of SHIELD.limit's words (Bucket, GCRA, Window, Quota,
	// Burst, Cost, Settle, DryRun, Headers, Refund, Wait, in any case).
	Name      string
	Algorithm Algorithm
	// Limit is the tokens per Period (Bucket, GCRA, Window) or per Calendar period (Quota).
	Limit int64
	// Period is the refill period (Bucket, GCRA) or window (Window), in whole seconds.
	Period time.Duration
	// Burst is the most tokens a Bucket holds, or a GCRA allows at once (0: Limit).
	Burst int64
	// Calendar is the period of a Quota.
	Calendar Calendar
	// Cost multiplies the cost of every call under this policy (0: 1): a policy with Cost 10
	// takes 10 tokens for a call of cost 1.
	Cost int64
	// OnFailure is what the policy decides when Redis cannot answer (default FailOpen).
	OnFailure Failure
}

// keywords are SHIELD.limit's words, which it refuses as policy names (in any case).
var keywords = map[string]bool{"BUCKET": true, "GCRA": true, "WINDOW": true, "QUOTA": true, "BURST": true,
	"COST": true, "SETTLE": true, "DRYRUN": true, "HEADERS": true, "REFUND": true, "WAIT": true}

// maxPolicies is the most policies one SHIELD.limit call takes.
const maxPolicies = 1000

func (p Policy) validate() error {
	if len(p.Name) == 0 || len(p.Name) > 64 || strings.IndexFunc(p.Name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) >= 0 {
		return fmt.Errorf("redisshield: policy name %q: use 1 to 64 letters, digits, - and _", p.Name)
	}
	if keywords[strings.ToUpper(p.Name)] {
		return fmt.Errorf("redisshield: policy name %q is one of SHIELD.limit's words", p.Name)
	}
	if p.Limit <= 0 {
		return fmt.Errorf("redisshield: policy %s: Limit must be positive", p.Name)
	}
	if p.Cost < 0 || p.Burst < 0 {
		return fmt.Errorf("redisshield: policy %s: Cost and Burst cannot be negative", p.Name)
	}
	switch p.Algorithm {
	case Bucket, GCRA, Window:
		if p.Period < time.Second || p.Period%time.Second != 0 {
			return fmt.Errorf("redisshield: policy %s: Period must be whole seconds, at least one", p.Name)
		}
		if p.Algorithm == Window && p.Burst != 0 {
			return fmt.Errorf("redisshield: policy %s: Burst applies to Bucket and GCRA only", p.Name)
		}
		if p.Algorithm == GCRA && (p.Limit-1)/1_000_000_000 >= int64(p.Period/time.Second) { // an interval of 0 ns
			return fmt.Errorf("redisshield: policy %s: a GCRA allows at most 1000000000 tokens per second", p.Name)
		}
	case Quota:
		if p.Calendar != Hour && p.Calendar != Day && p.Calendar != Month {
			return fmt.Errorf("redisshield: policy %s: Calendar must be Hour, Day or Month", p.Name)
		}
		if p.Burst != 0 {
			return fmt.Errorf("redisshield: policy %s: Burst applies to Bucket and GCRA only", p.Name)
		}
	default:
		return fmt.Errorf("redisshield: policy %s: unknown algorithm %v", p.Name, p.Algorithm)
	}
	return nil
}

func (p Policy) cost(cost int64) int64 {
	if p.Cost > 0 {
		return cost * p.Cost
	}
	return cost
}

// quota and window are the policy's RateLimit-Policy parameters q and w when no reply gives them
// (SHIELD.limit's limit and window): a bucket or GCRA with a burst is q = the burst, w = the
// seconds it takes to recover it all, so that RateLimit's r never exceeds q.
func (p Policy) quota() int64 {
	if (p.Algorithm == Bucket || p.Algorithm == GCRA) && p.Burst > 0 {
		return p.Burst
	}
	return p.Limit
}

func (p Policy) window(now time.Time) int64 {
	switch p.Algorithm {
	case Quota:
		now = now.UTC()
		switch p.Calendar {
		case Hour:
			return 3600
		case Day:
			return 86400
		default:
			first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
			return int64(first.AddDate(0, 1, 0).Sub(first) / time.Second)
		}
	case Bucket, GCRA:
		seconds := int64(p.Period / time.Second)
		if p.Burst > 0 {
			return ceilDiv(p.Burst*seconds, p.Limit)
		}
		return seconds
	}
	return int64(p.Period / time.Second)
}

func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}
