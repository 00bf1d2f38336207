package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The crash test runs the test binary again as a child process
// (TestCrashChild, selected by crashDirEnv) that accepts messages and
// delivers some of them in a loop, printing each acknowledgement after the
// store returned. The parent kills it with SIGKILL mid-stream, reopens the
// store and checks that everything acknowledged is there and intact, and
// that nothing else (partial bodies, orphan files, stuck claims) is.
//
// SIGKILL loses no page cache, so this tests the commit protocol and
// recovery, not the disk's honesty about fsync; power loss needs a VM test.

const crashDirEnv = "MMSRELAY_STORE_CRASH_DIR"

// crashLease is the lease of the child's claims. It bounds how long after
// its last attempt a recipient the child held is due again once the store
// is reopened.
const crashLease = time.Minute

func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrash")
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashDirEnv+"_SEED"), 10, 64)
	s, err := OpenBolt(dir, Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "child: open: %v\n", err)
		os.Exit(2)
	}
	var out sync.Mutex
	ack := func(format string, args ...any) {
		out.Lock()
		fmt.Fprintf(os.Stdout, format, args...) // one write(2) per line
		out.Unlock()
	}
	die := func(err error) {
		fmt.Fprintf(os.Stderr, "child: %v\n", err)
		os.Exit(2)
	}
	ctx := context.Background()
	for w := range 4 {
		go func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := 0; ; i++ {
				size := 1 + rng.IntN(256<<10)
				body := make([]byte, size)
				newPattern(rng.Uint64()).Read(body)
				id, err := s.Accept(ctx, testEnv(fmt.Sprintf("+1555%d%05d", w, i)), bytes.NewReader(body))
				if err != nil {
					die(err)
				}
				sum := sha256.Sum256(body)
				ack("ack %s %x\n", id, sum)
			}
		}()
	}
	go func() {
		rng := rand.New(rand.NewPCG(seed, 99))
		owner := fmt.Sprint("crash-child-", os.Getpid())
		for {
			jobs, err := s.Claim(ctx, ClaimRequest{Owner: owner, Now: time.Now(), Lease: crashLease, Limit: 8})
			if err != nil {
				die(err)
			}
			for _, j := range jobs {
				for _, ref := range j.Refs() {
					lease := j.Lease(ref.Index)
					a := Attempt{Route: "r", TransactionID: "t-" + ref.String()}
					if err := s.Record(ctx, Update{Ref: ref, Op: OpAttempt, Lease: lease, Attempt: a}); err != nil {
						die(err)
					}
					if rng.IntN(3) == 0 {
						if err := s.Record(ctx, Update{Ref: ref, Op: OpDeferred, Lease: lease, Next: time.Now(), Reason: "again"}); err != nil {
							die(err)
						}
						continue
					}
					if err := s.Record(ctx, Update{Ref: ref, Op: OpDelivered, Lease: lease, PeerID: "p-" + ref.String()}); err != nil {
						die(err)
					}
					ack("dlv %s %d\n", ref.ID, ref.Index)
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(20 * time.Second) // the parent kills us long before
	die(fmt.Errorf("not killed"))
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	acked := map[string]string{} // id → sha256 hex
	delivered := map[RcptRef]bool{}
	for round := range 3 {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(round)))
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, fmt.Sprintf("%s_SEED=%d", crashDirEnv, rng.Uint64()))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		tcheck(t, err, "StdoutPipe")
		tcheck(t, cmd.Start(), "start child")

		// Kill after a random number of acknowledgements, or after a random
		// time if the machine is slow, but only once some arrived.
		killAfter := 50 + rng.IntN(250)
		killAt := time.Now().Add(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
		lineCh := make(chan string)
		go func() {
			defer close(lineCh)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lineCh <- sc.Text()
			}
		}()
		lines := 0
		killed := false
		kill := func() {
			if !killed {
				// Lines already written still count: they stay in the pipe.
				tcheck(t, cmd.Process.Kill(), "kill child")
				killed = true
			}
		}
		tick := time.NewTicker(10 * time.Millisecond)
		giveUp := time.After(30 * time.Second)
	read:
		for {
			select {
			case line, ok := <-lineCh:
				if !ok {
					break read
				}
				f := strings.Fields(line)
				switch {
				case len(f) == 3 && f[0] == "ack":
					acked[f[1]] = f[2]
				case len(f) == 3 && f[0] == "dlv":
					n, _ := strconv.Atoi(f[2])
					delivered[RcptRef{f[1], n}] = true
				default:
					continue // test framework output
				}
				lines++
				if lines >= killAfter {
					kill()
				}
			case <-tick.C:
				if lines >= 10 && time.Now().After(killAt) {
					kill()
				}
			case <-giveUp:
				cmd.Process.Kill()
				t.Fatalf("round %d: only %d acknowledgements in 30 s\n%s", round, lines, stderr.String())
			}
		}
		tick.Stop()
		err = cmd.Wait()
		if !killed {
			t.Fatalf("round %d: child ended after %d lines before the kill: %v\n%s", round, lines, err, stderr.String())
		}
		tmps, _ := filepath.Glob(filepath.Join(dir, spoolName, tmpPrefix+"*"))
		t.Logf("round %d: killed after %d acknowledgements (%d temporary files left)", round, lines, len(tmps))
		verifyCrashDir(t, dir, acked, delivered)
	}
}

// verifyCrashDir reopens the store in dir and checks it against what the
// killed child acknowledged.
func verifyCrashDir(t *testing.T, dir string, acked map[string]string, delivered map[RcptRef]bool) {
	t.Helper()
	ctx := context.Background()
	s, err := OpenBolt(dir, Options{})
	tcheck(t, err, "reopen after kill")
	defer s.Close()

	list, err := s.List(ctx, ListOptions{Limit: 1 << 20})
	tcheck(t, err, "List")
	stored := map[string]*Message{}
	pending := map[RcptRef]bool{} // recipients not yet final
	for _, m := range list {
		stored[m.ID] = m
		// Every stored message, acknowledged or not, is whole.
		b, err := s.Body(ctx, m.ID)
		tcheck(t, err, "Body")
		h := sha256.New()
		n, err := io.Copy(h, b)
		b.Close()
		tcheck(t, err, "read body")
		if got := hex.EncodeToString(h.Sum(nil)); n != m.Size || got != m.SHA256 {
			t.Fatalf("%s: body %d bytes sha %s, record says %d %s", m.ID, n, got, m.Size, m.SHA256)
		}
		for _, r := range m.Rcpts {
			if r.Status == Delivering {
				t.Fatalf("%s/%d still delivering after reopen", m.ID, r.Index)
			}
			if !r.Status.Final() {
				pending[RcptRef{m.ID, r.Index}] = true
			}
		}
	}
	for id, sum := range acked {
		m := stored[id]
		if m == nil {
			t.Fatalf("acknowledged message %s lost", id)
		}
		if m.SHA256 != sum {
			t.Fatalf("%s: sha %s, child acknowledged %s", id, m.SHA256, sum)
		}
	}
	for ref := range delivered {
		if m := stored[ref.ID]; m == nil || m.Rcpts[ref.Index].Status != Delivered {
			t.Fatalf("acknowledged delivery %v lost", ref)
		}
	}
	// Delivery records: none lost (duplicates are allowed).
	recorded := map[RcptRef]bool{}
	for _, r := range readRecordsLoose(t, dir) {
		if r.Status == Delivered {
			recorded[RcptRef{r.QueueID, r.Rcpt}] = true
		}
	}
	for ref := range delivered {
		if !recorded[ref] {
			t.Fatalf("delivery record for %v lost", ref)
		}
	}
	// Every spool file belongs to a stored message (the rest are inline).
	ents, err := os.ReadDir(filepath.Join(dir, spoolName))
	tcheck(t, err, "ReadDir")
	for _, e := range ents {
		if stored[e.Name()] == nil {
			t.Fatalf("spool file %s has no record after reopen", e.Name())
		}
	}
	// The restarted store resumes: every recipient not yet final, the
	// child's interrupted claims too, is due within crashLease. Claim them
	// all, then make them due now again for the next round.
	now := time.Now()
	jobs, err := s.Claim(ctx, ClaimRequest{Owner: "verify", Now: now.Add(crashLease), Lease: time.Nanosecond, Limit: 1 << 20})
	tcheck(t, err, "Claim after reopen")
	var ups []Update
	for _, j := range jobs {
		for _, ref := range j.Refs() {
			if !pending[ref] {
				t.Fatalf("Claim after reopen took %v, which was not pending", ref)
			}
			delete(pending, ref)
			ups = append(ups, Update{Ref: ref, Op: OpDeferred, Lease: j.Lease(ref.Index), Next: now, Reason: "verified"})
		}
	}
	if len(pending) > 0 {
		t.Fatalf("%d recipients not due within %v of reopening, e.g. %v", len(pending), crashLease, firstRef(pending))
	}
	tcheck(t, s.Record(ctx, ups...), "put back")
	t.Logf("verified: %d stored (%d in spool files), %d acknowledged, %d deliveries acknowledged, %d resumed",
		len(stored), len(ents), len(acked), len(delivered), len(ups))
}

func firstRef(refs map[RcptRef]bool) RcptRef {
	for ref := range refs {
		return ref
	}
	return RcptRef{}
}

// readRecordsLoose reads records.jsonl, skipping a line cut by a crash.
func readRecordsLoose(t *testing.T, dir string) []Record {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, recordsName))
	tcheck(t, err, "read records")
	var out []Record
	bad := 0
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		var r Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			bad++
			continue
		}
		out = append(out, r)
	}
	if bad > 3 { // at most one cut line per killed round
		t.Fatalf("records.jsonl has %d unreadable lines", bad)
	}
	return out
}
