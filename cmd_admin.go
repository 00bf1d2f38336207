package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mmsrelay/mmsrelay/config"
	"github.com/mmsrelay/mmsrelay/relay/store"
	"golang.org/x/crypto/bcrypt"
)

const checkConfigHelp = `Check-config loads a configuration file (default ./config.toml, else the
built-in defaults), checks every key and value, and exits: 0 when it is
valid, 1 with every problem listed, each naming its key.
`

func runCheckConfig(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("check-config", "[-config FILE]", checkConfigHelp)
	cfgPath := fs.String("config", "", "configuration file")
	if st, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return st
	}
	if fs.NArg() > 0 {
		return usageError(fs, stderr, "unexpected argument %q", fs.Arg(0))
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		// Every problem on its own line: this command exists to list them.
		fmt.Fprintf(stderr, "mmsrelay check-config: %v\n", err)
		return exitFailure
	}
	src := cfg.Source
	if src == "" {
		src = "built-in defaults"
	}
	fmt.Fprintf(stdout, "%s: ok (%d route(s), MMS domains %s)\n", src, len(cfg.Routes), strings.Join(cfg.MMS.Domains, ", "))
	return exitOK
}

const hashPasswordHelp = `Hash-password reads a password from standard input (one line) and prints
its bcrypt hash, for the password_hash of a [[user]] in the configuration:
the relay never keeps plain-text passwords.
`

func runHashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("hash-password", "", hashPasswordHelp)
	if st, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return st
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fail(stderr, "hash-password", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return fail(stderr, "hash-password", errors.New("empty password"))
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return fail(stderr, "hash-password", err)
	}
	fmt.Fprintf(stdout, "%s\n", h)
	return exitOK
}

const queueHelp = `Queue shows and manages the relay's queue:

  mmsrelay queue list [-status STATUS]   messages, oldest first
  mmsrelay queue show ID                 one message with every recipient
  mmsrelay queue retry ID                make it due now
  mmsrelay queue drop ID                 give up on it

It talks to a running relay through its admin listener (admin.listen,
with admin.token); when no relay runs, it opens the store in
server.data_dir directly.
`

func runQueue(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("queue", "[-config FILE] [-json] list|show ID|retry ID|drop ID", queueHelp)
	cfgPath := fs.String("config", "", "configuration file")
	status := fs.String("status", "", "list: only messages with a recipient in `STATUS` (queued, deferred, delivering, delivered, failed, dropped)")
	asJSON := fs.Bool("json", false, "print JSON")
	if st, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return st
	}
	if fs.NArg() == 0 {
		return usageError(fs, stderr, "missing action: list, show, retry or drop")
	}
	action, rest := fs.Arg(0), fs.Args()[1:]
	// Flags may follow the action too.
	if err := fs.Parse(rest); err != nil {
		return exitUsage
	}
	rest = fs.Args()
	id := ""
	switch action {
	case "list":
		if len(rest) > 0 {
			return usageError(fs, stderr, "list takes no argument")
		}
	case "show", "retry", "drop":
		if len(rest) != 1 {
			return usageError(fs, stderr, "%s takes one queue id", action)
		}
		id = rest[0]
	default:
		return usageError(fs, stderr, "unknown action %q", action)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return fail(stderr, "queue", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := queueViaAdmin(ctx, cfg.Admin.Listen, cfg.Admin.Token, action, id, *status)
	if errors.Is(err, errNoAdmin) {
		msgs, err = queueViaStore(ctx, cfg, action, id, *status)
	}
	if err != nil {
		return fail(stderr, "queue", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if action == "list" {
			enc.Encode(msgs)
		} else if len(msgs) == 1 {
			enc.Encode(msgs[0])
		}
		return exitOK
	}
	printQueue(stdout, msgs, action != "list")
	return exitOK
}

var errNoAdmin = errors.New("no relay answers on the admin listener")

func queueViaAdmin(ctx context.Context, addr, token, action, id, status string) ([]*store.Message, error) {
	u := "http://" + addr + "/api/queue"
	method := http.MethodGet
	switch action {
	case "list":
		if status != "" {
			u += "?status=" + status
		}
	case "show":
		u += "/" + id
	default:
		u += "/" + id + "/" + action
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		return nil, errNoAdmin
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin API: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if action == "list" {
		var msgs []*store.Message
		return msgs, json.Unmarshal(body, &msgs)
	}
	var m store.Message
	return []*store.Message{&m}, json.Unmarshal(body, &m)
}

func queueViaStore(ctx context.Context, cfg *config.Config, action, id, status string) ([]*store.Message, error) {
	if dir := storeDir(cfg); !storeExists(cfg) {
		return nil, fmt.Errorf("no relay answers on the admin listener and there is no store at %s", dir)
	}
	be, err := openStore(cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("opening the store (is a relay running without its admin listener?): %w", err)
	}
	defer be.Close()
	switch action {
	case "list":
		var opts store.ListOptions
		if status != "" {
			s, err := store.ParseStatus(status)
			if err != nil {
				return nil, err
			}
			opts.Status = s
		}
		return be.Admin.List(ctx, opts)
	case "retry":
		err = be.Admin.Retry(ctx, id)
	case "drop":
		err = be.Admin.Drop(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	m, err := be.Queue.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return []*store.Message{m}, nil
}

func printQueue(w io.Writer, msgs []*store.Message, detail bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if !detail {
		fmt.Fprintln(tw, "ID\tRECEIVED\tFROM\tRCPTS\tSTATUS")
		for _, m := range msgs {
			counts := map[string]int{}
			for _, r := range m.Rcpts {
				counts[r.Status.String()]++
			}
			var st []string
			for _, k := range []string{"queued", "deferred", "delivering", "delivered", "failed", "dropped"} {
				if counts[k] > 0 {
					st = append(st, fmt.Sprintf("%s:%d", k, counts[k]))
				}
			}
			from := m.Envelope.From
			if from == "" {
				from = "<>"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", m.ID, m.Envelope.ReceivedAt.Format(time.RFC3339), from, len(m.Rcpts), strings.Join(st, " "))
		}
		tw.Flush()
		return
	}
	for _, m := range msgs {
		from := m.Envelope.From
		if from == "" {
			from = "<>"
		}
		fmt.Fprintf(w, "id:       %s\nkind:     %s\nfrom:     %s\nreceived: %s\nsize:     %d\n", m.ID, m.Envelope.Kind, from,
			m.Envelope.ReceivedAt.Format(time.RFC3339), m.Size)
		fmt.Fprintln(tw, "RCPT\tSTATUS\tATTEMPTS\tNEXT\tROUTE\tPEER ID\tREPORT\tLAST ERROR")
		for _, r := range m.Rcpts {
			next := ""
			if !r.NextAttempt.IsZero() && r.Status.Waiting() {
				next = r.NextAttempt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Addr, r.Status, r.Attempts, next, r.Route, r.PeerID, r.Report, r.LastError)
		}
		tw.Flush()
	}
}
