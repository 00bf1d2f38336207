// Package e2e runs `mmsrelay serve` as a real process for the end-to-end
// tests in the repository root (e2e_test.go): it writes a configuration on
// free loopback ports in a temporary folder, starts the binary, waits for
// its SMTP greeting, reads the admin API, and always stops the process
// (SIGTERM, then SIGKILL after a deadline). It also runs fake SMTP peers
// (go-smtp) and finds the third-party tools the tests drive (swaks,
// smtp-sink, smtp-source, tshark).
//
// Everything listens on 127.0.0.1 only. Nothing here is used by the relay
// itself.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mmsrelay/mmsrelay/relay/store"
)

// RequireToolsEnv names the environment variable that turns a missing tool
// from a skip into a failure (.ci/run sets it to 1).
const RequireToolsEnv = "MMSRELAY_REQUIRE_TOOLS"

// RequireTools reports whether missing tools must fail the tests.
func RequireTools() bool { return os.Getenv(RequireToolsEnv) == "1" }

// toolDirs are searched after PATH: Postfix's smtp-sink and smtp-source
// live in /usr/sbin, which a non-root PATH may lack.
var toolDirs = []string{"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"}

// LookTool returns the path of the program name, or "" when it is not
// installed.
func LookTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range toolDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Tool returns the path of the program name (from the Debian package pkg).
// When it is missing the test is skipped with a message naming the
// package, or fails when RequireTools. With -short it skips the test.
func Tool(tb testing.TB, name, pkg string) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("end-to-end test: skipped with -short")
	}
	if p := LookTool(name); p != "" {
		return p
	}
	Missing(tb, "%s not found (apt-get install %s)", name, pkg)
	return ""
}

// Missing ends the test for want of a tool or feature: a skip, or a
// failure when RequireTools.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...) + "; " + RequireToolsEnv + "=1 makes this a failure"
	if RequireTools() {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// FreeAddr returns "127.0.0.1:PORT" for a port that was free a moment ago:
// it listens on port 0, notes the port and closes the listener.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("net.Listen(127.0.0.1:0) = %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Options shape a relay's configuration. The fixed parts: host name
// relay.test, MMS domain mms.test, SMTP and admin on free loopback ports,
// data_dir in a temporary folder, and an outbox route for "+" to
// Dir/outbox (longer prefixes in Extra win over it).
type Options struct {
	SMTP   string // more lines for [smtp]
	Queue  string // lines for [queue]
	Server string // more lines for [server]
	// Submission adds a submission listener on a free port (SMTP must
	// then name tls_cert and tls_key).
	Submission bool
	// Extra is appended: more sections ([[route]], [[mm4_peer]],
	// [[user]], [outbound]).
	Extra string
}

// Relay is one `mmsrelay serve` process with its folder and addresses.
type Relay struct {
	Bin        string // the mmsrelay binary
	Dir        string // data_dir; the outbox is Dir/outbox
	Config     string // path of the configuration file
	SMTP       string // SMTP listener address
	Submission string // submission listener address, if any
	Admin      string // admin listener address
	LogPath    string // stdout and stderr of every run, appended

	tb   testing.TB
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
	err  error         // its exit, once done is closed
}

// NewRelay writes a configuration in a new temporary folder. Start runs it.
func NewRelay(tb testing.TB, bin string, o Options) *Relay {
	tb.Helper()
	dir := tb.TempDir()
	r := &Relay{Bin: bin, Dir: dir, Config: filepath.Join(dir, "mmsrelay.toml"), SMTP: FreeAddr(tb),
		Admin: FreeAddr(tb), LogPath: filepath.Join(dir, "relay.log"), tb: tb}
	if o.Submission {
		r.Submission = FreeAddr(tb)
	}
	r.WriteConfig(o)
	return r
}

// WriteConfig (re)writes the configuration file from o, keeping the
// relay's folder and addresses (a Submission listener needs o.Submission
// at NewRelay). A running relay reads it on SIGHUP (Signal).
func (r *Relay) WriteConfig(o Options) {
	r.tb.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[server]\nhostname = \"relay.test\"\ndata_dir = %q\nlog_level = \"info\"\n%s\n", r.Dir, o.Server)
	fmt.Fprintf(&b, "[smtp]\nlisten = [%q]\n", r.SMTP)
	if r.Submission != "" {
		fmt.Fprintf(&b, "submission_listen = [%q]\n", r.Submission)
	}
	fmt.Fprintf(&b, "%s\n", o.SMTP)
	fmt.Fprintf(&b, "[mms]\ndomains = [\"mms.test\"]\n\n")
	fmt.Fprintf(&b, "[admin]\nlisten = %q\n\n", r.Admin)
	if o.Queue != "" {
		fmt.Fprintf(&b, "[queue]\n%s\n\n", o.Queue)
	}
	fmt.Fprintf(&b, "[[route]]\nprefix = \"+\"\ntype = \"outbox\"\ndir = %q\n\n%s\n", r.Outbox(), o.Extra)
	// Through a rename, so that a reload never reads half a file.
	tmp := r.Config + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		r.tb.Fatal(err)
	}
	if err := os.Rename(tmp, r.Config); err != nil {
		r.tb.Fatal(err)
	}
}

// Signal sends sig to the running relay.
func (r *Relay) Signal(sig syscall.Signal) {
	r.mu.Lock()
	cmd := r.cmd
	r.mu.Unlock()
	if cmd == nil {
		r.tb.Fatal("Signal: the relay is not running")
	}
	if err := cmd.Process.Signal(sig); err != nil {
		r.tb.Fatalf("Signal(%v) = %v", sig, err)
	}
}

// WaitLog waits until the log has more than n lines containing s, or
// fails after d. It returns how many there are.
func (r *Relay) WaitLog(s string, n int, d time.Duration) int {
	r.tb.Helper()
	deadline := time.Now().Add(d)
	for {
		if c := strings.Count(r.Log(), s); c > n {
			return c
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("waited %v for %q in the log\n%s", d, s, r.LogTail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Outbox is the outbox route's folder.
func (r *Relay) Outbox() string { return filepath.Join(r.Dir, "outbox") }

// Start runs `mmsrelay serve -config …` and waits (up to wait) until its
// SMTP listener greets. It returns how long that took. A cleanup stops
// the process at the end of the test.
func (r *Relay) Start(wait time.Duration) time.Duration {
	r.tb.Helper()
	logf, err := os.OpenFile(r.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.tb.Fatal(err)
	}
	cmd := exec.Command(r.Bin, "serve", "-config", r.Config)
	cmd.Dir = r.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, and killed with the test binary.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		r.tb.Fatalf("starting %s: %v", r.Bin, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		logf.Close()
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
		close(done)
	}()
	r.mu.Lock()
	first := r.cmd == nil
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	if first {
		r.tb.Cleanup(func() {
			r.Stop()
			if log := r.Log(); strings.Contains(log, "WARNING: DATA RACE") {
				r.tb.Errorf("the relay reported a data race:\n%s", log[strings.Index(log, "WARNING: DATA RACE"):])
			}
		})
	}
	if err := r.waitGreeting(wait, done); err != nil {
		r.Stop()
		r.tb.Fatalf("relay did not answer SMTP on %s within %v: %v\n%s", r.SMTP, wait, err, r.LogTail(40))
	}
	return time.Since(start)
}

// waitGreeting dials the SMTP listener until it reads a 220 greeting.
func (r *Relay) waitGreeting(wait time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(wait)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("the process exited")
		default:
		}
		c, err := net.DialTimeout("tcp", r.SMTP, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(max(time.Until(deadline), 100*time.Millisecond)))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil && strings.HasPrefix(line, "220") {
				return nil
			}
			last = fmt.Errorf("greeting %q, %v", line, err)
		} else {
			last = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return last
}

// Stop ends the process: SIGTERM (the relay finishes work in flight), and
// SIGKILL to its process group after 20 s, which fails the test, as does
// an exit status other than 0. Safe to call more than once.
func (r *Relay) Stop() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		r.mu.Lock()
		err := r.err
		r.mu.Unlock()
		if err != nil {
			r.tb.Errorf("relay exited with %v after SIGTERM (%v)\n%s", err, time.Since(start).Round(time.Millisecond), r.LogTail(20))
		}
	case <-time.After(20 * time.Second):
		r.tb.Errorf("relay did not stop within 20s of SIGTERM: SIGKILL\n%s", r.LogTail(20))
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// Kill sends SIGKILL to the process group (a crash) and waits for the exit.
func (r *Relay) Kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Log returns what the relay printed so far.
func (r *Relay) Log() string {
	b, _ := os.ReadFile(r.LogPath)
	return string(b)
}

// LogTail returns the last n lines of the log.
func (r *Relay) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(r.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "relay log (tail):\n" + strings.Join(lines, "\n")
}

// get reads the admin API path into v.
func (r *Relay) get(path string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+r.Admin+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, v)
}

// Queue returns GET /api/queue: every message the store holds.
func (r *Relay) Queue() []store.Message {
	r.tb.Helper()
	var msgs []store.Message
	if err := r.get("/api/queue", &msgs); err != nil {
		r.tb.Fatalf("admin API: %v", err)
	}
	return msgs
}

// Message returns GET /api/queue/{id}.
func (r *Relay) Message(id string) store.Message {
	r.tb.Helper()
	var m store.Message
	if err := r.get("/api/queue/"+id, &m); err != nil {
		r.tb.Fatalf("admin API: %v", err)
	}
	return m
}

// WaitQueue polls the admin API until cond holds for the list of
// messages, or fails the test after d.
func (r *Relay) WaitQueue(d time.Duration, what string, cond func([]store.Message) bool) []store.Message {
	r.tb.Helper()
	deadline := time.Now().Add(d)
	for {
		msgs := r.Queue()
		if cond(msgs) {
			return msgs
		}
		if time.Now().After(deadline) {
			js, _ := json.MarshalIndent(msgs, "", "  ")
			r.tb.Fatalf("waited %v for %s; queue:\n%s\n%s", d, what, js, r.LogTail(30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// OutboxFiles returns the names of the outbox files with suffix (".mms").
func (r *Relay) OutboxFiles(suffix string) []string {
	ents, err := os.ReadDir(r.Outbox())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		r.tb.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// Run runs the binary with args (not serve) and returns its output.
func (r *Relay) Run(stdin string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(r.Bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// Port returns the port of a "host:port" address.
func Port(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
