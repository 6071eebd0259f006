package redisshield

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// KeyFunc names the caller a request is counted against.
type KeyFunc func(r *http.Request) (string, error)

// ClientIP keys requests by the client's address, "ip:<address>". X-Forwarded-For is read only
// when the request comes from one of trustedProxies (addresses or CIDR ranges): then the client is
// the right-most address in it that is not a trusted proxy. Without trusted proxies the header is
// ignored, so a client cannot pick its own key.
func ClientIP(trustedProxies ...string) (KeyFunc, error) {
	var nets []*net.IPNet
	for _, t := range trustedProxies {
		if !strings.Contains(t, "/") {
			ip := net.ParseIP(t)
			if ip == nil {
				return nil, fmt.Errorf("redisshield: trusted proxy %q is not an address", t)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			nets = append(nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(t)
		if err != nil {
			return nil, fmt.Errorf("redisshield: trusted proxy %q: %v", t, err)
		}
		nets = append(nets, n)
	}
	trusted := func(ip net.IP) bool {
		for _, n := range nets {
			if n.Contains(ip) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) (string, error) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		client := net.ParseIP(host)
		if client == nil {
			return "", fmt.Errorf("redisshield: remote address %q is not an IP address", r.RemoteAddr)
		}
		if trusted(client) {
			var hops []string
			for _, value := range r.Header.Values("X-Forwarded-For") {
				hops = append(hops, strings.Split(value, ",")...)
			}
			for i := len(hops) - 1; i >= 0; i-- {
				hop := net.ParseIP(strings.TrimSpace(hops[i]))
				if hop == nil {
					break // a malformed entry: keep the last address a trusted proxy vouched for
				}
				client = hop
				if !trusted(hop) {
					break
				}
			}
		}
		return "ip:" + client.String(), nil
	}, nil
}

// HeaderKey keys requests by the value of a header, "header:<name>:<value>"; requests without it
// are keyed by fallback (refused with 400 when fallback is nil). Use it only for a header that
// something has checked (an API key your gateway validated), or callers choose their own limits.
func HeaderKey(name string, fallback KeyFunc) KeyFunc {
	return func(r *http.Request) (string, error) {
		if value := r.Header.Get(name); value != "" {
			return "header:" + strings.ToLower(name) + ":" + value, nil
		}
		if fallback == nil {
			return "", fmt.Errorf("redisshield: the request has no %s header", name)
		}
		return fallback(r)
	}
}

// MiddlewareOptions configure Middleware.
type MiddlewareOptions struct {
	// Limiter applies to every request that no Routes pattern matches (nil: those are not limited).
	Limiter *Limiter
	// Routes give paths their own limiter. Patterns read as http.ServeMux's paths: "/api/" matches
	// everything under it, "/login" only itself; the longest match wins.
	Routes map[string]*Limiter
	// Exempt lists path patterns (as Routes) that are never limited and get no headers.
	Exempt []string
	// Key names the caller (default: ClientIP with no trusted proxy).
	Key KeyFunc
	// Cost is a request's cost (default 1; values below 1 count as 1).
	Cost func(r *http.Request) int64
	// LegacyHeaders adds X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset, from the
	// policy with the least remaining.
	LegacyHeaders bool
}

// Middleware limits requests: every limited response carries RateLimit-Policy and RateLimit; a
// refused request gets 429 with Retry-After and an application/problem+json body naming the
// violated policies, or 503 when a fail-closed policy refused it because Redis did not answer.
func Middleware(opts MiddlewareOptions) (func(http.Handler) http.Handler, error) {
	if opts.Limiter == nil && len(opts.Routes) == 0 {
		return nil, errors.New("redisshield: the middleware needs a Limiter or Routes")
	}
	if opts.Key == nil {
		opts.Key, _ = ClientIP()
	}
	exempt, routes := map[string]bool{}, map[string]bool{}
	for _, p := range opts.Exempt {
		exempt[p] = true
	}
	for p := range opts.Routes {
		routes[p] = true
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			path := r.URL.Path
			if pattern := longestMatch(path, exempt); pattern != "" {
				next.ServeHTTP(w, r)
				return
			}
			limiter := opts.Limiter
			if pattern := longestMatch(path, routes); pattern != "" {
				limiter = opts.Routes[pattern]
			}
			if limiter == nil {
				next.ServeHTTP(w, r)
				return
			}
			key, err := opts.Key(r)
			if err != nil {
				problem(w, http.StatusBadRequest, "Bad Request", err.Error(), nil)
				return
			}
			cost := int64(1)
			if opts.Cost != nil {
				if c := opts.Cost(r); c > 1 {
					cost = c
				}
			}
			res, _ := limiter.Limit(r.Context(), key, cost)
			h := w.Header()
			h.Set("RateLimit-Policy", res.PolicyHeader())
			if v := res.RateLimitHeader(); v != "" {
				h.Set("RateLimit", v)
			}
			if opts.LegacyHeaders {
				legacyHeaders(h, res)
			}
			if res.Allowed {
				next.ServeHTTP(w, r)
				return
			}
			if res.RetryAfter >= 0 {
				h.Set("Retry-After", strconv.FormatInt(res.RetryAfterSeconds(), 10))
			}
			if res.Err != nil {
				problem(w, http.StatusServiceUnavailable, "Service Unavailable",
					"the rate limiter could not reach Redis and policy "+strings.Join(res.Violated, ", ")+" fails closed", &res)
				return
			}
			problem(w, http.StatusTooManyRequests, "Too Many Requests",
				"rate limit exceeded: "+strings.Join(res.Violated, ", "), &res)
		})
	}, nil
}

func legacyHeaders(h http.Header, res Result) {
	for _, p := range res.Policies {
		if p.Known && p.Remaining == res.Remaining {
			h.Set("X-RateLimit-Limit", strconv.FormatInt(p.Quota, 10))
			h.Set("X-RateLimit-Remaining", strconv.FormatInt(p.Remaining, 10))
			h.Set("X-RateLimit-Reset", strconv.FormatInt(ceilSeconds(p.Reset), 10))
			return
		}
	}
}

// Problem is the application/problem+json body (RFC 9457) of a refused request.
type Problem struct {
	Type       string   `json:"type"`
	Title      string   `json:"title"`
	Status     int      `json:"status"`
	Detail     string   `json:"detail"`
	Violated   []string `json:"violated_policies,omitempty"`
	RetryAfter *int64   `json:"retry_after,omitempty"`
}

func problem(w http.ResponseWriter, status int, title, detail string, res *Result) {
	body := Problem{Type: "about:blank", Title: title, Status: status, Detail: detail}
	if res != nil {
		body.Violated = res.Violated
		if res.RetryAfter >= 0 {
			seconds := res.RetryAfterSeconds()
			body.RetryAfter = &seconds
		}
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// longestMatch is the longest pattern matching path: a pattern ending in "/" matches the paths
// under it, any other only itself.
func longestMatch(path string, patterns map[string]bool) string {
	best := ""
	for p := range patterns {
		if (p == path || strings.HasSuffix(p, "/") && strings.HasPrefix(path, p)) && len(p) > len(best) {
			best = p
		}
	}
	return best
}
