package deliver

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mmsrelay/mmsrelay/config"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// Outbox writes each message as <id>.mms (the binary M-Send.req) with
// <id>.json beside it (a description for people and scripts), in Dir. The
// id is the message's transaction id, so a retry after a crash rewrites
// the same files rather than adding new ones. Files appear atomically:
// written to a temporary name, synced, renamed, and the folder synced.
type Outbox struct {
	Dir string
	// Describe turns a PDU into the JSON object that `mmsrelay decode`
	// prints. Nil writes a short description of the headers.
	Describe func(*pdu.Message) any
}

// buildOutbox is the registry's builder of "outbox" routes.
func buildOutbox(rc config.Route, env Env) (Route, error) {
	return &Outbox{Dir: rc.Dir, Describe: env.Describe}, nil
}

// Wire is the binary PDU.
func (o *Outbox) Wire(*Message) Wire { return Wire{Interface: mapping.InterfacePDU} }

// OutboxRecord is the content of an outbox .json file.
type OutboxRecord struct {
	ID         string    `json:"id"`
	QueueID    string    `json:"queue_id"`
	Sender     string    `json:"sender"`
	Recipients []string  `json:"recipients"`
	Received   time.Time `json:"received"`
	Delivered  time.Time `json:"delivered"`
	Size       int       `json:"size"`
	PDU        any       `json:"pdu"`
}

// Deliver writes the files. The .mms file is m.PDU as it is, or m.MMS
// encoded when m.PDU is nil.
func (o *Outbox) Deliver(ctx context.Context, m *Message) []Result {
	b := m.PDU
	if b == nil {
		var err error
		if b, err = m.MMS.Append(nil); err != nil {
			return all(m, Result{Outcome: Bounce, Reason: "cannot encode the MMS: " + err.Error()})
		}
	}
	id := safeName(m.TransactionID)
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return all(m, Result{Outcome: Retry, Reason: "outbox: " + err.Error()})
	}
	var desc any = map[string]any{"message_type": m.MMS.Type.String(), "transaction_id": m.MMS.TransactionID}
	if o.Describe != nil {
		desc = o.Describe(m.MMS)
	}
	rec := OutboxRecord{ID: id, QueueID: m.QueueID, Sender: m.Sender, Recipients: m.Recipients,
		Received: m.Received, Delivered: time.Now().UTC(), Size: len(b), PDU: desc}
	js, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return all(m, Result{Outcome: Bounce, Reason: "outbox: " + err.Error()})
	}
	// The .json goes first and the .mms last: a watcher that picks up
	// .mms files finds the description already there.
	for _, f := range []struct {
		name string
		data []byte
	}{{id + ".json", append(js, '\n')}, {id + ".mms", b}} {
		if err := writeFileAtomic(filepath.Join(o.Dir, f.name), f.data); err != nil {
			return all(m, Result{Outcome: Retry, Reason: "outbox: " + err.Error()})
		}
	}
	return all(m, Result{Outcome: Delivered, PeerID: id, Size: len(b)})
}

// safeName keeps the characters that are safe in a file name.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
	s = strings.TrimLeft(s, ".")
	if s == "" {
		s = "message"
	}
	return s
}

// writeFileAtomic writes data to path through a synced temporary file and a
// rename, then syncs the folder.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o640); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
