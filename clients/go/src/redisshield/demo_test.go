package redisshield

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the repository, four folders up from this package (clients/go/src/redisshield).
func repoRoot(t testing.TB) string {
	root, err := filepath.Abs(filepath.Join("..", "..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// startProgram starts a command in its own process group, killed (the group, by its PID) when
// the test ends, and waits until something listens on port.
func startProgram(t *testing.T, port int, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	log, err := os.Create(filepath.Join(t.TempDir(), "output"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	waitFor(t, 150*time.Second, fmt.Sprintf("%s to listen on %d", name, port), func() bool {
		select {
		case <-done:
			out, _ := os.ReadFile(log.Name())
			t.Fatalf("%s exited: %s", name, out)
		default:
		}
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

func TestTheDemoAnswersTenQuickRequestsThenRefusesWith429AndCountsOnlyTheTenAgainstTheDay(t *testing.T) {
	s := startServer(t, false)
	port := freePort(t)
	startProgram(t, port, "bash", filepath.Join(repoRoot(t), "clients", "go", "demo.sh"),
		"--port", strconv.Itoa(port), "--redis-url", s.url())
	var transcript []string
	for i := 1; i <= 12; i++ {
		resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		line := fmt.Sprintf("%2d %d RateLimit: %s", i, resp.StatusCode, resp.Header.Get("RateLimit"))
		if resp.StatusCode == 429 {
			line += " Retry-After: " + resp.Header.Get("Retry-After") + " " + strings.TrimSpace(string(body))
		} else {
			line += " " + strings.TrimSpace(string(body))
		}
		transcript = append(transcript, line)
		want := 200
		if i > 10 {
			want = 429
		}
		if resp.StatusCode != want || (want == 200 && string(body) != "hello\n") {
			t.Fatalf("request %d: want %d, got:\n%s", i, want, strings.Join(transcript, "\n"))
		}
		rateLimitFields(t, resp.Header.Get("RateLimit-Policy"), resp.Header.Get("RateLimit"))
		if i == 1 {
			transcript = append([]string{"RateLimit-Policy: " + resp.Header.Get("RateLimit-Policy")}, transcript...)
		}
	}
	t.Logf("the demo's answers to 12 quick requests:\n%s", strings.Join(transcript, "\n"))
	// The two 429s took nothing: the daily quota counted the ten requests served, not twelve.
	if daily := s.do("GET", "demo:{ip:127.0.0.1}:per-day"); fmt.Sprintf("%s", daily) != "10" {
		t.Fatalf("the demo's daily count should be 10 after ten 200s and two 429s, not %s", daily)
	}
}
