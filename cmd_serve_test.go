package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmsrelay/mmsrelay/config"
	"github.com/mmsrelay/mmsrelay/mail/dkim"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

// TestRelayOptionsReplies: a reply domain and a DKIM key in the config give
// the relay its way back; without them it has none.
func TestRelayOptionsReplies(t *testing.T) {
	dir := t.TempDir()
	key, _, err := dkim.GenerateKey(dkim.KeyEd25519)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "dkim.pem")
	os.WriteFile(keyFile, key, 0o600)
	st, err := store.Open(store.Config{Dir: filepath.Join(dir, "store"), MinFree: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	carriers := filepath.Join(dir, "carriers.json")
	os.WriteFile(carriers, []byte(`{"carriers": [{"name": "newtel", "domains": ["mms.newtel.example"], "strip_text": ["^Sent by NewTel$"]}]}`), 0o644)
	cfg, err := config.Parse(`
[reply]
domain = "reply.example.net"
optout_scope = "all"
carriers_file = "` + carriers + `"
[dkim]
domain = "reply.example.net"
selector = "s1"
key_file = "` + keyFile + `"
`)
	if err != nil {
		t.Fatal(err)
	}
	o, err := relayOptions(cfg, st, log, &certStore{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Replies == nil || o.Replies.Book == nil || o.Replies.Domain != "reply.example.net" || o.Replies.DKIM == nil {
		t.Fatalf("Replies = %+v", o.Replies)
	}
	if got := o.Replies.Carriers.Carrier("15551234567@mms.newtel.example"); got != "newtel" {
		t.Errorf("carrier from carriers_file = %q, want newtel", got)
	}
	o, err = relayOptions(config.Default(), st, log, &certStore{})
	if err != nil || o.Replies != nil {
		t.Errorf("default config: Replies = %+v, %v", o.Replies, err)
	}
	if _, err := config.Parse("[reply]\ndomain = \"r.example\"\nunmapped = \"catchall\"\n"); err == nil || !strings.Contains(err.Error(), "reply.catchall") {
		t.Errorf("catchall without a mailbox: %v", err)
	}
	// With no relay running, optout reads the store itself.
	st.Close()
	if code, out, errs := runCmd(t, nil, "optout", "list", "-config", writeConfig(t, dir)); code != 0 || !strings.Contains(out, "NUMBER") {
		t.Errorf("optout list = %d %q %q", code, out, errs)
	}
}

func writeConfig(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "c.toml")
	os.WriteFile(p, []byte("[server]\ndata_dir = \""+dir+"\"\n[admin]\nlisten = \"127.0.0.1:1\"\n"), 0o644)
	return p
}
