package redisshield

// Real redis-server processes with Shield loaded, for the tests: each on a free loopback port
// below 32768 (its cluster bus port, +10000, too), waited for by polling PING, killed by PID.

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

var (
	modulePath string // a private copy of SHIELD_MODULE, made once: the original may be rebuilt
	serverPath = "redis-server"
	portMu     sync.Mutex
	nextPort   = 11000 + (os.Getpid()*53+7000)%11000
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "redisshield-go-test-")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		source := os.Getenv("SHIELD_MODULE")
		if source == "" {
			source = filepath.Join("..", "..", "..", "..", "build", "libredis_shield.so")
		}
		// The lead engineer may be rebuilding it: wait up to two minutes for it to appear.
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
			if err = copyFile(source, filepath.Join(dir, "libredis_shield.so")); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "no Shield module (set SHIELD_MODULE): %v\n", err)
			return 1
		}
		modulePath = filepath.Join(dir, "libredis_shield.so")
		os.Chmod(modulePath, 0o755) // Redis loads only an executable module
		if override := os.Getenv("SHIELD_REDIS_SERVER"); override != "" {
			serverPath = override
		}
		return m.Run()
	}()
	os.Exit(code)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err = io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// freePort is a loopback port in 11000-21999 that is free now, with its bus port (+10000) too.
func freePort(t testing.TB) int {
	portMu.Lock()
	defer portMu.Unlock()
	for i := 0; i < 11000; i++ {
		nextPort = 11000 + (nextPort-11000+1)%11000
		if portFree(nextPort) && portFree(nextPort+10000) {
			return nextPort
		}
	}
	t.Fatal("no free port")
	return 0
}

// waitFor polls condition until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, condition func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !condition() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type server struct {
	t    testing.TB
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }
func (s *server) url() string  { return "redis://" + s.addr() }

// startServer starts redis-server with Shield; it is killed when the test ends.
func startServer(t testing.TB, cluster bool, extra ...string) *server {
	t.Helper()
	s := &server{t: t, port: freePort(t), dir: t.TempDir(), done: make(chan struct{})}
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir, "--save", "",
		"--appendonly", "no", "--logfile", filepath.Join(s.dir, "server.log"), "--enable-debug-command", "yes",
		"--loadmodule", modulePath}
	if cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
	}
	s.cmd = exec.Command(serverPath, append(args, extra...)...)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.kill)
	waitFor(t, 15*time.Second, "redis-server on "+s.addr()+" to answer PING", func() bool {
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
			t.Fatalf("redis-server exited: %s", log)
		default:
		}
		c, err := redis.Dial("tcp", s.addr(), redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second))
		if err != nil {
			return false
		}
		defer c.Close()
		pong, err := redis.String(c.Do("PING"))
		return err == nil && pong == "PONG"
	})
	return s
}

// kill stops the server by its PID and waits for it to be gone.
func (s *server) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Kill()
	<-s.done
}

// do runs one command on its own connection.
func (s *server) do(cmd string, args ...interface{}) interface{} {
	s.t.Helper()
	c, err := redis.Dial("tcp", s.addr(), redis.DialReadTimeout(10*time.Second))
	if err != nil {
		s.t.Fatal(err)
	}
	defer c.Close()
	reply, err := c.Do(cmd, args...)
	if err != nil {
		s.t.Fatalf("%s %v on %s: %v", cmd, args, s.addr(), err)
	}
	return reply
}

var commandStat = regexp.MustCompile(`(?m)^cmdstat_([^:]+):calls=(\d+)`)

// commandCalls reads INFO commandstats: calls per command name (lower case).
func (s *server) commandCalls() map[string]int64 {
	info, _ := redis.String(s.do("INFO", "commandstats"), nil)
	calls := map[string]int64{}
	for _, m := range commandStat.FindAllStringSubmatch(info, -1) {
		calls[strings.ToLower(m[1])], _ = strconv.ParseInt(m[2], 10, 64)
	}
	return calls
}

type cluster struct {
	t     testing.TB
	nodes []*server
}

// startCluster starts three primaries (no replicas), joins them with redis-cli --cluster create
// and waits until every node reports cluster_state:ok and agrees on the slots' owners.
func startCluster(t testing.TB) *cluster {
	t.Helper()
	c := &cluster{t: t}
	var addrs []string
	for i := 0; i < 3; i++ {
		n := startServer(t, true)
		c.nodes = append(c.nodes, n)
		addrs = append(addrs, n.addr())
	}
	create := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...),
		"--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitAgreed()
	return c
}

func (c *cluster) waitAgreed() {
	c.t.Helper()
	waitFor(c.t, 60*time.Second, "the cluster to agree", func() bool {
		var first string
		for i, n := range c.nodes {
			info, _ := redis.String(n.do("CLUSTER", "INFO"), nil)
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") ||
				!strings.Contains(info, "cluster_known_nodes:3") {
				return false
			}
			view := fmt.Sprint(c.owners(n))
			if i == 0 {
				first = view
			} else if view != first {
				return false
			}
		}
		return true
	})
}

// owners is one node's view: the port serving each slot range.
func (c *cluster) owners(n *server) []string {
	reply, _ := n.do("CLUSTER", "SLOTS").([]interface{})
	var rows []string
	for _, r := range reply {
		f := r.([]interface{})
		node := f[2].([]interface{})
		rows = append(rows, fmt.Sprintf("%d-%d@%d", f[0], f[1], node[1]))
	}
	sortStrings(rows)
	return rows
}

func (c *cluster) id(n *server) string {
	id, _ := redis.String(n.do("CLUSTER", "MYID"), nil)
	return id
}

// owner is the node that serves slot.
func (c *cluster) owner(slot int) *server {
	for _, n := range c.nodes {
		reply, _ := n.do("CLUSTER", "SLOTS").([]interface{})
		for _, r := range reply {
			f := r.([]interface{})
			if int(f[0].(int64)) <= slot && slot <= int(f[1].(int64)) {
				port := int(f[2].([]interface{})[1].(int64))
				for _, m := range c.nodes {
					if m.port == port {
						return m
					}
				}
			}
		}
		break
	}
	c.t.Fatalf("no node serves slot %d", slot)
	return nil
}

// beginMove marks slot as migrating from one node to another and moves its keys: the source
// then answers ASK for them.
func (c *cluster) beginMove(slot int, from, to *server) {
	to.do("CLUSTER", "SETSLOT", slot, "IMPORTING", c.id(from))
	from.do("CLUSTER", "SETSLOT", slot, "MIGRATING", c.id(to))
	keys, _ := redis.Strings(from.do("CLUSTER", "GETKEYSINSLOT", slot, 1000), nil)
	if len(keys) > 0 {
		args := []interface{}{"127.0.0.1", to.port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		from.do("MIGRATE", args...)
	}
}

// finishMove gives slot to its new owner on every node (the source answers MOVED afterwards).
func (c *cluster) finishMove(slot int, to *server) {
	id := c.id(to)
	to.do("CLUSTER", "SETSLOT", slot, "NODE", id)
	for _, n := range c.nodes {
		if n != to {
			n.do("CLUSTER", "SETSLOT", slot, "NODE", id)
		}
	}
	c.waitAgreed()
}

func sortStrings(s []string) { sort.Strings(s) }
