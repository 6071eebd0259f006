package redisshield

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Options configure a Client.
type Options struct {
	// Addrs are "host:port" addresses: the server (standalone), or any nodes of the cluster
	// (Cluster), from which the client learns the rest with CLUSTER SLOTS.
	Addrs []string
	// Cluster routes every key to the node that serves its hash slot and follows MOVED and ASK.
	Cluster bool
	// Username and Password, when set, are sent with AUTH on every new connection.
	Username, Password string
	// DB is selected on every new connection (standalone only).
	DB int
	// IdleConns is how many idle connections the client keeps per node (default 16).
	IdleConns int
}

// ParseURL reads "redis://[user:password@]host:port[/db][?cluster=yes]". Several hosts may be
// given, separated by commas ("redis://h1:7001,h2:7002?cluster=yes"): the seeds of a cluster.
func ParseURL(raw string) (Options, error) {
	rest := strings.TrimPrefix(raw, "redis://")
	if rest == raw {
		return Options{}, fmt.Errorf("redisshield: %q: only redis:// URLs are supported", raw)
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	userinfo, hosts := "", rest[:end]
	if at := strings.LastIndex(hosts, "@"); at >= 0 {
		userinfo, hosts = hosts[:at+1], hosts[at+1:]
	}
	var o Options
	for _, host := range strings.Split(hosts, ",") {
		if host == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(host); err != nil {
			host = net.JoinHostPort(strings.Trim(host, "[]"), "6379")
		}
		o.Addrs = append(o.Addrs, host)
	}
	if len(o.Addrs) == 0 {
		return Options{}, fmt.Errorf("redisshield: %q names no host", raw)
	}
	u, err := url.Parse("redis://" + userinfo + o.Addrs[0] + rest[end:])
	if err != nil {
		return Options{}, err
	}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
		if _, set := u.User.Password(); !set { // redis://secret@host: the password alone
			o.Username, o.Password = "", u.User.Username()
		}
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if o.DB, err = strconv.Atoi(db); err != nil {
			return Options{}, fmt.Errorf("redisshield: %q: the path must be a database number", raw)
		}
	}
	switch strings.ToLower(u.Query().Get("cluster")) {
	case "", "0", "no", "false":
	case "1", "yes", "true":
		o.Cluster = true
	default:
		return Options{}, fmt.Errorf("redisshield: %q: cluster must be yes or no", raw)
	}
	return o, nil
}

// Client talks to one Redis server, or to a Redis Cluster over one connection pool per node. It
// keeps its own slot map (from CLUSTER SLOTS) and follows MOVED and ASK replies itself. It is safe
// for concurrent use.
type Client struct {
	opts   Options
	mu     sync.Mutex
	nodes  map[string]*node
	slots  atomic.Value // *slotMap; nil until loaded
	stale  int32        // 1: reload the slot map before the next call
	closed bool
	calls  int64 // commands sent to Redis
}

// NewClient makes a client; it connects lazily, at the first call.
func NewClient(opts Options) (*Client, error) {
	if len(opts.Addrs) == 0 {
		return nil, errors.New("redisshield: Options.Addrs is empty")
	}
	if opts.IdleConns <= 0 {
		opts.IdleConns = 16
	}
	return &Client{opts: opts, nodes: map[string]*node{}}, nil
}

// NewClientFromURL is NewClient(ParseURL(raw)).
func NewClientFromURL(raw string) (*Client, error) {
	opts, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	return NewClient(opts)
}

// Close closes every idle connection; calls made afterwards fail.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, n := range c.nodes {
		n.drain()
	}
	return nil
}

// CommandsSent is how many commands this client has sent to Redis (MOVED and ASK retries and
// ASKING included).
func (c *Client) CommandsSent() int64 { return atomic.LoadInt64(&c.calls) }

type node struct {
	addr string
	idle chan *nodeConn
}

type nodeConn struct {
	net  net.Conn
	resp redis.Conn
}

func (n *node) drain() {
	for {
		select {
		case conn := <-n.idle:
			conn.resp.Close()
		default:
			return
		}
	}
}

func (c *Client) node(addr string) (*node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("redisshield: client closed")
	}
	n := c.nodes[addr]
	if n == nil {
		n = &node{addr: addr, idle: make(chan *nodeConn, c.opts.IdleConns)}
		c.nodes[addr] = n
	}
	return n, nil
}

func (c *Client) dial(ctx context.Context, addr string) (*nodeConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	conn := &nodeConn{net: nc, resp: redis.NewConn(nc, 0, 0)}
	if deadline, ok := ctx.Deadline(); ok {
		nc.SetDeadline(deadline)
	}
	if c.opts.Password != "" {
		args := []interface{}{c.opts.Password}
		if c.opts.Username != "" {
			args = []interface{}{c.opts.Username, c.opts.Password}
		}
		if _, err := conn.resp.Do("AUTH", args...); err != nil {
			conn.resp.Close()
			return nil, err
		}
	}
	if c.opts.DB != 0 && !c.opts.Cluster {
		if _, err := conn.resp.Do("SELECT", c.opts.DB); err != nil {
			conn.resp.Close()
			return nil, err
		}
	}
	return conn, nil
}

// command is one Redis command and the key that routes it.
type command struct {
	key  string
	args []interface{} // the command's name first
}

// pipeline sends cmds to one node in one round trip and reads their replies. A reply that is a
// Redis error is returned as a redis.Error value; err is a failure of the connection (or of ctx's
// deadline), after which the connection is closed. asking[i] sends ASKING before cmds[i].
func (c *Client) pipeline(ctx context.Context, addr string, cmds []command, asking []bool) ([]interface{}, error) {
	n, err := c.node(addr)
	if err != nil {
		return nil, err
	}
	var conn *nodeConn
	select {
	case conn = <-n.idle:
	default:
		if conn, err = c.dial(ctx, addr); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("redisshield: %s: %w (%v)", addr, ctx.Err(), err)
			}
			return nil, fmt.Errorf("redisshield: %s: %w", addr, err)
		}
	}
	deadline, _ := ctx.Deadline() // zero: no deadline
	conn.net.SetDeadline(deadline)
	// A context cancelled before its deadline ends the call too: a deadline in the past makes the
	// connection's reads and writes fail at once.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			conn.net.SetDeadline(time.Unix(1, 0))
		case <-stop:
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			<-stopped
		}
	}()
	fail := func(err error) ([]interface{}, error) {
		conn.resp.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("redisshield: %s: %w (%v)", addr, ctx.Err(), err)
		}
		return nil, fmt.Errorf("redisshield: %s: %w", addr, err)
	}
	sent := 0
	for i, cmd := range cmds {
		if asking != nil && asking[i] {
			if err := conn.resp.Send("ASKING"); err != nil {
				return fail(err)
			}
			sent++
		}
		if err := conn.resp.Send(cmd.args[0].(string), cmd.args[1:]...); err != nil {
			return fail(err)
		}
		sent++
	}
	atomic.AddInt64(&c.calls, int64(sent))
	if err := conn.resp.Flush(); err != nil {
		return fail(err)
	}
	replies := make([]interface{}, len(cmds))
	for i := range cmds {
		if asking != nil && asking[i] {
			if _, err := conn.resp.Receive(); err != nil {
				if _, isReply := err.(redis.Error); !isReply {
					return fail(err)
				}
			}
		}
		reply, err := conn.resp.Receive()
		if err != nil {
			if replyErr, isReply := err.(redis.Error); isReply {
				reply = replyErr
			} else {
				return fail(err)
			}
		}
		replies[i] = reply
	}
	close(stop) // the watcher is gone before the connection goes back to the pool
	<-stopped
	conn.net.SetDeadline(time.Time{})
	select {
	case n.idle <- conn:
	default:
		conn.resp.Close()
	}
	return replies, nil
}

// slotMap returns the cluster's slot map, loading it with CLUSTER SLOTS when it is missing or stale.
func (c *Client) slotMap(ctx context.Context) (*slotMap, error) {
	current, _ := c.slots.Load().(*slotMap)
	if current != nil && atomic.LoadInt32(&c.stale) == 0 {
		return current, nil
	}
	seeds := append([]string(nil), c.opts.Addrs...)
	if current != nil { // the nodes it knows first: a seed may be gone
		seen := map[string]bool{}
		var known []string
		for _, addr := range current {
			if addr != "" && !seen[addr] {
				seen[addr] = true
				known = append(known, addr)
			}
		}
		seeds = append(known, seeds...)
	}
	var lastErr error
	for _, addr := range seeds {
		replies, err := c.pipeline(ctx, addr, []command{{args: []interface{}{"CLUSTER", "SLOTS"}}}, nil)
		if err == nil {
			if replyErr, isErr := replies[0].(redis.Error); isErr {
				err = replyErr
			}
		}
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		host, _, _ := net.SplitHostPort(addr)
		m, err := parseClusterSlots(replies[0], host)
		if err != nil {
			lastErr = err
			continue
		}
		c.slots.Store(m)
		atomic.StoreInt32(&c.stale, 0)
		return m, nil
	}
	if current != nil { // keep routing by what we knew; MOVED corrects it
		return current, nil
	}
	return nil, fmt.Errorf("redisshield: cannot load the cluster's slots: %w", lastErr)
}

// route is the node that serves key: the server itself when standalone.
func (c *Client) route(ctx context.Context, key string) (string, error) {
	if !c.opts.Cluster {
		return c.opts.Addrs[0], nil
	}
	m, err := c.slotMap(ctx)
	if err != nil {
		return "", err
	}
	if addr := m[Slot(key)]; addr != "" {
		return addr, nil
	}
	return c.opts.Addrs[0], nil // an uncovered slot: a node answers with MOVED or CLUSTERDOWN
}

// maxRedirections bounds the MOVED and ASK replies one call follows.
const maxRedirections = 5

// do sends cmds, each to the node that serves its key, one round trip per node (one in all when
// the keys share a hash tag), and follows MOVED (updating the slot map) and ASK replies. A reply
// that is an error is returned as a redis.Error value; err means the call as a whole failed.
func (c *Client) do(ctx context.Context, cmds []command) ([]interface{}, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redisshield: %w", err)
	}
	replies := make([]interface{}, len(cmds))
	target := make([]string, len(cmds))
	asking := make([]bool, len(cmds))
	pending := make([]int, len(cmds))
	for i := range cmds {
		pending[i] = i
		addr, err := c.route(ctx, cmds[i].key)
		if err != nil {
			return nil, err
		}
		target[i] = addr
	}
	for round := 0; len(pending) > 0; round++ {
		if round > maxRedirections {
			return nil, fmt.Errorf("redisshield: more than %d redirections", maxRedirections)
		}
		groups := map[string][]int{}
		var order []string
		for _, i := range pending {
			if groups[target[i]] == nil {
				order = append(order, target[i])
			}
			groups[target[i]] = append(groups[target[i]], i)
		}
		pending = pending[:0:0]
		for _, addr := range order {
			indices := groups[addr]
			batch := make([]command, len(indices))
			ask := make([]bool, len(indices))
			for j, i := range indices {
				batch[j], ask[j] = cmds[i], asking[i]
			}
			got, err := c.pipeline(ctx, addr, batch, ask)
			if err != nil {
				if c.opts.Cluster {
					atomic.StoreInt32(&c.stale, 1) // the node may be gone: ask again next time
				}
				return nil, err
			}
			host, _, _ := net.SplitHostPort(addr)
			for j, i := range indices {
				asking[i] = false
				if replyErr, isErr := got[j].(redis.Error); isErr && c.opts.Cluster {
					if r, ok := parseRedirection(string(replyErr), host); ok {
						target[i], asking[i] = r.addr, r.ask
						if !r.ask {
							c.learn(r.slot, r.addr)
						}
						pending = append(pending, i)
						continue
					}
				}
				replies[i] = got[j]
			}
		}
	}
	return replies, nil
}

// learn records a MOVED reply in the slot map and asks for a full reload before the next call
// (a slot rarely moves alone).
func (c *Client) learn(slot int, addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	current, _ := c.slots.Load().(*slotMap)
	next := new(slotMap)
	if current != nil {
		*next = *current
	}
	next[slot] = addr
	c.slots.Store(next)
	atomic.StoreInt32(&c.stale, 1)
}
