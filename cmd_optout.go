package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/mmsrelay/mmsrelay/relay/replies"
)

const optoutHelp = `Optout lists the numbers that replied STOP (or STOPALL) to a sender:

  mmsrelay optout list [-number +15551234567]

It asks a running relay through its admin listener, or reads the store in
server.data_dir when no relay runs.
`

func runOptout(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("optout", "[-config FILE] [-json] list [-number N]", optoutHelp)
	cfgPath := fs.String("config", "", "configuration file")
	number := fs.String("number", "", "only this number (E.164)")
	asJSON := fs.Bool("json", false, "print JSON")
	if st, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return st
	}
	if fs.NArg() == 0 || fs.Arg(0) != "list" {
		return usageError(fs, stderr, "the action is list")
	}
	if err := fs.Parse(fs.Args()[1:]); err != nil || fs.NArg() > 0 {
		return usageError(fs, stderr, "list takes no argument")
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return fail(stderr, "optout", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var list []replies.OptOut
	u := "http://" + cfg.Admin.Listen + "/api/optouts?number=" + url.QueryEscape(*number)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if cfg.Admin.Token != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.Admin.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return fail(stderr, "optout", fmt.Errorf("admin API: %s: %s", resp.Status, b))
		}
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			return fail(stderr, "optout", err)
		}
	} else {
		if !storeExists(cfg) {
			return fail(stderr, "optout", errors.New("no relay answers on the admin listener and there is no store at "+storeDir(cfg)))
		}
		st, err := openStore(cfg, nil)
		if err != nil {
			return fail(stderr, "optout", err)
		}
		defer st.Close()
		book, err := replies.New(st.KV, replies.Options{ReplyDomain: cfg.Reply.Domain, MMSDomain: cfg.MMS.Domains[0]})
		if err != nil {
			return fail(stderr, "optout", err)
		}
		if list, err = book.ListOptOuts(ctx, *number); err != nil {
			return fail(stderr, "optout", err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(list)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NUMBER\tSENDER\tKEYWORD\tSINCE")
	for _, o := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", o.Number, o.Sender, o.Keyword, o.Time.Format(time.RFC3339))
	}
	tw.Flush()
	return exitOK
}
