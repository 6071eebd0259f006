// The Redis Shield demo: an HTTP server answering "hello" on GET /, limited per client address to
// 5 requests per second with bursts of 10 and 1000 per UTC day, both decided by one call,
// SHIELD.limit 2 <keys> per-second BUCKET 5 1 BURST 10 COST 1 per-day QUOTA 1000 DAY COST 1: a
// refused request counts against neither. Run it with `bash clients/go/demo.sh --port N --redis-url URL`.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"redisshield"
)

func main() {
	port := flag.Int("port", 8080, "the port to listen on, on 127.0.0.1")
	redisURL := flag.String("redis-url", "redis://127.0.0.1:6379", "Redis (add ?cluster=yes for a cluster)")
	trusted := flag.String("trusted-proxies", "", "comma-separated proxies whose X-Forwarded-For is believed")
	flag.Parse()

	client, err := redisshield.NewClientFromURL(*redisURL)
	if err != nil {
		log.Fatal(err)
	}
	limiter, err := redisshield.NewLimiter(client, []redisshield.Policy{
		{Name: "per-second", Algorithm: redisshield.Bucket, Limit: 5, Period: time.Second, Burst: 10},
		{Name: "per-day", Algorithm: redisshield.Quota, Limit: 1000, Calendar: redisshield.Day},
	}, redisshield.LimiterOptions{Prefix: "demo:"})
	if err != nil {
		log.Fatal(err)
	}
	var proxies []string
	if *trusted != "" {
		proxies = strings.Split(*trusted, ",")
	}
	key, err := redisshield.ClientIP(proxies...)
	if err != nil {
		log.Fatal(err)
	}
	limit, err := redisshield.Middleware(redisshield.MiddlewareOptions{Limiter: limiter, Key: key})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "hello")
	})
	listener, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("redis shield demo on http://127.0.0.1:%d/ (Redis: %s)", *port, *redisURL)
	log.Fatal(http.Serve(listener, limit(mux)))
}
