// Package dovecottest runs a throwaway Dovecot IMAP server on loopback for
// tests (the recipe in shared/recipes/test-servers.md): its own short temp
// directory, passwd-file users, Maildir owned by the dovecot user, an
// optional STARTTLS certificate, "dovecot -F" in its own process group.
// It needs root and Debian's dovecot-imapd; without them the test is
// skipped, or fails under MMSRELAY_REQUIRE_TOOLS=1.
package dovecottest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options configure a Server.
type Options struct {
	// Users are the accounts; each one's password is Password(name).
	Users []string
	// CertPEM and KeyPEM, when set, turn on STARTTLS with that certificate.
	CertPEM, KeyPEM []byte
}

// Password is the password Start gives user.
func Password(user string) string { return user + "-secret" }

// Server is one Dovecot instance.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Need returns the dovecot binary, or skips t (fails it with
// MMSRELAY_REQUIRE_TOOLS=1) when dovecot, root or the dovecot user is
// missing.
func Need(t testing.TB) string {
	t.Helper()
	missing := func(why string) {
		t.Helper()
		if os.Getenv("MMSRELAY_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s (MMSRELAY_REQUIRE_TOOLS=1): install dovecot-imapd and run as root", why)
		}
		t.Skipf("%s: skipping a test that needs a real Dovecot (apt-get install dovecot-imapd, run as root; MMSRELAY_REQUIRE_TOOLS=1 makes this fatal)", why)
	}
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/dovecot"); serr != nil {
			missing("dovecot is not installed")
		}
		bin = "/usr/sbin/dovecot"
	}
	if os.Geteuid() != 0 {
		missing("not root")
	}
	if _, err := user.Lookup("dovecot"); err != nil {
		missing("no dovecot user")
	}
	return bin
}

// Start configures and starts Dovecot on a free loopback port. It is
// stopped, and its directory removed, when the test ends; its log is shown
// when the test failed.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := Need(t)
	dir, err := os.MkdirTemp("", "dvc") // short: sockets live under it (107-byte limit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the dovecot user must traverse it
		t.Fatal(err)
	}
	dv, err := user.Lookup("dovecot")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(dv.Uid)
	gid, _ := strconv.Atoi(dv.Gid)
	mailDir := filepath.Join(dir, "mail")
	if err := os.Mkdir(mailDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(mailDir, uid, gid); err != nil {
		t.Fatal(err)
	}
	var pw strings.Builder
	for _, u := range opts.Users {
		fmt.Fprintf(&pw, "%s:{PLAIN}%s::::::\n", u, Password(u))
	}
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte(pw.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, bin: bin, dir: dir, port: l.Addr().(*net.TCPAddr).Port}
	l.Close()
	ssl := "ssl = no"
	if opts.CertPEM != nil {
		certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if err := os.WriteFile(certFile, opts.CertPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, opts.KeyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		ssl = fmt.Sprintf("ssl = yes\nssl_cert = <%s\nssl_key = <%s", certFile, keyFile)
	}
	conf := fmt.Sprintf(`instance_name = dovecot-test-%[2]d
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
%[3]s
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_location = maildir:%[1]s/mail/%%n
passdb {
  driver = passwd-file
  args = %[1]s/users
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=%[1]s/mail/%%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]d
  }
  inet_listener imaps {
    port = 0
  }
}
`, dir, s.port, ssl)
	if err := os.WriteFile(s.conf(), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Logf("dovecot.log:\n%s", log)
		}
	})
	s.Start()
	return s
}

func (s *Server) conf() string { return filepath.Join(s.dir, "dovecot.conf") }

// Addr is the IMAP listener, "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Start (re)starts the instance and waits for its "* OK" greeting; it
// fails the test if that does not work.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.TryStart(); err != nil {
		s.t.Fatal(err)
	}
}

// TryStart is Start for any goroutine: it returns the error.
func (s *Server) TryStart() error {
	if err := s.removeStaleLocks(); err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "-F", "-c", s.conf())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dovecot: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "dovecot.log"))
			return fmt.Errorf("dovecot exited at start: %v\n%s\n%s", cmd.ProcessState, out.String(), log)
		default:
		}
		if Greeted(s.Addr()) {
			return nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return errors.New("dovecot not ready after 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// removeStaleLocks removes the Maildir dotlocks (dovecot-uidlist.lock) a
// killed instance left behind. After a SIGKILL in the middle of a MOVE,
// the lock on the destination folder's uidlist stays, and the next
// instance's MOVE, COPY or APPEND into that folder waits until the dotlock
// counts as stale (2 minutes, not configurable). A poller only waits (no
// loss, no duplicate), but the test would wait too; a real restart after a
// crash should do the same cleanup while Dovecot is down.
func (s *Server) removeStaleLocks() error {
	return filepath.WalkDir(filepath.Join(s.dir, "mail"), func(path string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && e.Name() == "dovecot-uidlist.lock" {
			s.t.Logf("removing stale lock %s left by the killed instance", path)
			return os.Remove(path)
		}
		return nil
	})
}

// Greeted reports whether addr answers with "* OK".
func Greeted(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "* OK")
}

// Stop sends SIGTERM to the master and waits up to 10 s, then SIGKILLs
// the process group; children share it, so none is left behind.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.t.Errorf("dovecot did not stop 10 s after SIGTERM; killing it")
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}

// Kill SIGKILLs the whole instance at once, as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// lockedBuffer collects Dovecot's output from two writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
