package redisshield

// Every ```go snippet of docs/clients/go.md is built and run as pasted. The only change made to a
// snippet is to its ports: 127.0.0.1:6379 becomes a standalone server this test starts,
// 127.0.0.1:7001 a node of a 3-node cluster it starts (only when a snippet names it), and
// 127.0.0.1:8080 a free port. Each snippet is a whole program (package main). A snippet that
// serves HTTP (http.ListenAndServe) is started, asked GET / (200 with RateLimit-Policy and
// RateLimit), and killed; any other must exit with 0, and when it has "// Output:" comment lines,
// print exactly them. Every server is flushed before each snippet.

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var goFence = regexp.MustCompile("(?s)```go\n(.*?)```")

func docSnippets(t *testing.T) []string {
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "clients", "go.md"))
	if err != nil {
		t.Fatal(err)
	}
	var snippets []string
	for _, m := range goFence.FindAllStringSubmatch(string(doc), -1) {
		snippets = append(snippets, m[1])
	}
	return snippets
}

// expectedOutput is the text of the "// Output:" comment lines, or "" when there are none.
func expectedOutput(snippet string) (string, bool) {
	lines := strings.Split(snippet, "\n")
	for i, line := range lines {
		if strings.TrimSpace(line) != "// Output:" {
			continue
		}
		var want []string
		for _, next := range lines[i+1:] {
			next = strings.TrimSpace(next)
			if !strings.HasPrefix(next, "//") {
				break
			}
			want = append(want, strings.TrimSpace(strings.TrimPrefix(next, "//")))
		}
		return strings.Join(want, "\n") + "\n", true
	}
	return "", false
}

func TestEveryGoSnippetOfTheDocsBuildsAndRunsAsPasted(t *testing.T) {
	snippets := docSnippets(t)
	if len(snippets) < 4 {
		t.Fatalf("want at least 4 snippets in docs/clients/go.md, found %d", len(snippets))
	}
	standalone := startServer(t, false)
	var clusterNodes *cluster
	gopath := t.TempDir()
	for i, snippet := range snippets {
		if !strings.HasPrefix(snippet, "package main\n") {
			t.Fatalf("snippet %d is not a whole program (package main)", i+1)
		}
		source := strings.ReplaceAll(snippet, "127.0.0.1:6379", standalone.addr())
		if strings.Contains(source, "127.0.0.1:7001") {
			if clusterNodes == nil {
				clusterNodes = startCluster(t)
			}
			source = strings.ReplaceAll(source, "127.0.0.1:7001", clusterNodes.nodes[0].addr())
		}
		httpPort := freePort(t)
		source = strings.ReplaceAll(source, "127.0.0.1:8080", "127.0.0.1:"+strconv.Itoa(httpPort))
		standalone.do("FLUSHALL")
		if clusterNodes != nil {
			for _, n := range clusterNodes.nodes {
				n.do("FLUSHALL")
			}
		}
		name := "snippet" + strconv.Itoa(i+1)
		dir := filepath.Join(gopath, "src", name)
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(source), 0o644); err != nil {
			t.Fatal(err)
		}
		binary := filepath.Join(gopath, name)
		build := exec.Command("go", "build", "-o", binary, name)
		build.Env = append(os.Environ(), "GO111MODULE=off",
			"GOPATH="+gopath+string(os.PathListSeparator)+filepath.Join(repoRoot(t), "clients", "go")+string(os.PathListSeparator)+"/usr/share/gocode")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("snippet %d does not build: %v\n%s\n%s", i+1, err, out, snippet)
		}
		if strings.Contains(source, "http.ListenAndServe") {
			t.Run(name, func(t *testing.T) {
				startProgram(t, httpPort, binary)
				resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(httpPort) + "/")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(body) != "hello\n" {
					t.Fatalf("snippet %d: GET / answered %d %q", i+1, resp.StatusCode, body)
				}
				rateLimitFields(t, resp.Header.Get("RateLimit-Policy"), resp.Header.Get("RateLimit"))
				if resp.Header.Get("RateLimit") == "" {
					t.Fatalf("snippet %d: no RateLimit header", i+1)
				}
			})
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := exec.CommandContext(ctx, binary).Output()
		cancel()
		if err != nil {
			t.Fatalf("snippet %d failed: %v\n%s", i+1, err, out)
		}
		if want, ok := expectedOutput(snippet); ok && string(out) != want {
			t.Fatalf("snippet %d printed %q, its Output comment says %q", i+1, out, want)
		}
	}
}
