package pdu

// Independent check of the encoder with Wireshark's MMSE dissector, run
// through shared/tools/pdu-dissect (tshark). Set MMSRELAY_REQUIRE_TSHARK=1
// to turn a missing tshark into a failure instead of a skip (CI does).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
)

// testJPEG returns a real baseline JPEG of w×h pixels: smooth gradients
// with deterministic noise from seed, which compresses roughly like a
// photo.
func testJPEG(tb testing.TB, w, h int, seed uint64, noise, quality int) []byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15))
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := 128 + 100*(x-w/2)/w + 60*(y-h/2)/h
			if noise > 0 {
				v += rng.IntN(2*noise+1) - noise
			}
			img.Y[img.YOffset(x, y)] = uint8(min(max(v, 0), 255))
		}
	}
	for y := 0; y < h/2; y++ {
		for x := 0; x < w/2; x++ {
			c := color.YCbCr{Cb: uint8(128 + 40*x/w), Cr: uint8(128 - 40*y/h)}
			i := img.COffset(2*x, 2*y)
			img.Cb[i], img.Cr[i] = c.Cb, c.Cr
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		tb.Fatalf("jpeg.Encode: %v", err)
	}
	return buf.Bytes()
}

const testSMIL = `<smil><head><layout><root-layout/>` +
	`<region id="Image" top="0" left="0" height="70%" width="100%"/>` +
	`<region id="Text" top="70%" left="0" height="30%" width="100%"/></layout></head>` +
	`<body><par dur="5000ms"><img src="photo.jpg" region="Image"/>` +
	`<text src="text.txt" region="Text"/></par></body></smil>`

// relatedBody returns the Content-Type and parts of a multipart/related
// MMS body: SMIL (start), text, a JPEG and an opaque binary part.
func relatedBody(tb testing.TB, jpg []byte) (ContentType, []Part) {
	ct := ContentType{Type: "application/vnd.wap.multipart.related", Params: []Param{
		{Name: "start", Value: "<smil>"}, {Name: "type", Value: "application/smil"}}}
	parts := []Part{
		{ContentType: ContentType{Type: "application/smil", Params: []Param{{Name: "charset", Value: "utf-8"}, {Name: "name", Value: "smil.xml"}}},
			ContentID: "<smil>", ContentLocation: "smil.xml", Body: []byte(testSMIL)},
		{ContentType: ContentType{Type: "text/plain", Params: []Param{{Name: "charset", Value: "utf-8"}, {Name: "name", Value: "text.txt"}}},
			ContentID: "<text>", ContentLocation: "text.txt", Body: []byte("Hallo, schöne Grüße 👋")},
		{ContentType: ContentType{Type: "image/jpeg", Params: []Param{{Name: "name", Value: "photo.jpg"}}},
			ContentID: "<photo>", ContentLocation: "photo.jpg", Body: jpg},
		{ContentType: ContentType{Type: "application/octet-stream"},
			ContentID: "<blob>", ContentLocation: "blob.bin", Body: bytes.Repeat([]byte{0, 1, 2, 0xff}, 333)},
	}
	return ct, parts
}

var (
	tsDate     = time.Date(2026, 11, 25, 9, 30, 15, 0, time.UTC)
	tsDeliver  = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	tsExpires  = time.Date(2026, 12, 2, 23, 59, 59, 0, time.UTC)
	tsSentDate = time.Date(2026, 11, 24, 18, 0, 1, 0, time.UTC)
	longSubj   = "A subject well over thirty octets, to need the Length-quote"
)

// tsharkCases are the PDUs checked with Wireshark, one or more per type.
func tsharkCases(tb testing.TB) map[string]*Message {
	jpg := testJPEG(tb, 96, 64, 1, 8, 80)
	ct, parts := relatedBody(tb, jpg)
	plmn := func(n string) EncodedString { return Str(n + "/TYPE=PLMN") }
	return map[string]*Message{
		"send-req": {
			Type: TypeSendReq, TransactionID: "T-send-1", Version: Version12, Date: tsDate,
			From: &From{Insert: true},
			To:   []EncodedString{plmn("+15551234567"), Str("alice@example.com")},
			Cc:   []EncodedString{Str("bob@example.org")}, Bcc: []EncodedString{plmn("+4915112345678")},
			Subject: Str("Grüße 👋"), MessageClass: ClassPersonal, Priority: PriorityHigh,
			DeliveryReport: Yes, ReadReport: No, SenderVisibility: VisibilityShow,
			Expiry: Relative(24 * time.Hour), DeliveryTime: Absolute(tsDeliver),
			ContentType: ct, Parts: parts,
		},
		"send-conf": {
			Type: TypeSendConf, TransactionID: "T-send-1", Version: Version12,
			ResponseStatus: ResponseOK, ResponseText: Str("Message accepted"), MessageID: "msg-0001@mmsc",
		},
		"notification-ind": {
			Type: TypeNotificationInd, TransactionID: "T-notif-7", Version: Version12,
			From: &From{Address: Str("carol@example.net")}, Subject: EncodedString{Charset: CharsetUTF8, Text: longSubj},
			MessageClass: ClassInformational, MessageSize: 123456, Expiry: Absolute(tsExpires),
			ContentLocation: "http://mmsc.example.com/mms/0001", DeliveryReport: No, Priority: PriorityLow,
		},
		"notifyresp-ind": {
			Type: TypeNotifyRespInd, TransactionID: "T-notif-7", Version: Version12,
			Status: StatusRetrieved, ReportAllowed: Yes,
		},
		"retrieve-conf": {
			Type: TypeRetrieveConf, TransactionID: "T-retr-3", Version: Version12, MessageID: "msg-0002@mmsc",
			Date: tsDate, From: &From{Address: plmn("+436646620958")},
			To: []EncodedString{plmn("+436644600167")}, Cc: []EncodedString{Str("dave@example.com")},
			Subject:      EncodedString{Charset: CharsetUTF8, Text: "Été à Zürich"},
			MessageClass: ClassAdvertisement, Priority: PriorityNormal, DeliveryReport: No, ReadReport: Yes,
			RetrieveStatus: 0x80, RetrieveText: Str("OK"),
			PreviouslySentBy:   []PreviouslySentBy{{Count: 1, Address: plmn("+15550001111")}},
			PreviouslySentDate: []PreviouslySentDate{{Count: 1, Date: tsSentDate}},
			ContentType:        ct, Parts: parts,
		},
		"acknowledge-ind": {
			Type: TypeAcknowledgeInd, TransactionID: "T-retr-3", Version: Version12, ReportAllowed: No,
		},
		"delivery-ind": {
			Type: TypeDeliveryInd, Version: Version12, MessageID: "msg-0001@mmsc",
			To: []EncodedString{plmn("+15551234567")}, Date: tsDate, Status: StatusRetrieved,
		},
		"read-rec-ind": {
			Type: TypeReadRecInd, Version: Version12, MessageID: "msg-0002@mmsc",
			To: []EncodedString{plmn("+436646620958")}, From: &From{Insert: true},
			Date: tsDate, ReadStatus: ReadStatusRead,
		},
		"read-orig-ind": {
			Type: TypeReadOrigInd, Version: Version12, MessageID: "msg-0001@mmsc",
			To: []EncodedString{Str("alice@example.com")}, From: &From{Address: plmn("+15551234567")},
			Date: tsDate, ReadStatus: ReadStatusDeletedWithoutRead,
		},
		"forward-req": {
			Type: TypeForwardReq, TransactionID: "T-fwd-9", Version: Version12, Date: tsDate,
			From: &From{Insert: true}, To: []EncodedString{Str("erin@example.com")},
			Bcc: []EncodedString{plmn("+15559998888")}, Expiry: Relative(72 * time.Hour),
			DeliveryTime: Relative(time.Hour), ReportAllowed: Yes, DeliveryReport: Yes, ReadReport: Yes,
			ContentLocation: "http://mmsc.example.com/mms/0002",
		},
		"forward-conf": {
			Type: TypeForwardConf, TransactionID: "T-fwd-9", Version: Version12,
			ResponseStatus: ResponseErrorServiceDenied, ResponseText: Str("Zugriff verweigert – äöü"),
			MessageID: "msg-0003@mmsc",
		},
		"mbox-store-req": {
			Type: TypeMboxStoreReq, TransactionID: "T-mbox-1", Version: Version12,
			ContentLocation: "http://mmsc.example.com/mms/0002", MMState: 0x82,
		},
		"mbox-delete-req": {
			Type: TypeMboxDeleteReq, TransactionID: "T-mbox-2", Version: Version12,
			ContentLocation: "http://mmsc.example.com/mms/0002",
		},
		"delete-req": {
			Type: TypeDeleteReq, TransactionID: "T-del-1", Version: Version13,
			ContentLocation: "http://mmsc.example.com/mms/0002",
		},
		"cancel-req": {
			Type: TypeCancelReq, TransactionID: "T-can-1", Version: Version13, CancelID: "msg-0001@mmsc",
		},
		"cancel-conf": {
			Type: TypeCancelConf, TransactionID: "T-can-1", Version: Version13, CancelStatus: 0x80,
		},
	}
}

// pduDissect returns the path of shared/tools/pdu-dissect, skipping the
// test (or failing it under MMSRELAY_REQUIRE_TSHARK=1) when it or tshark
// is missing.
func pduDissect(t *testing.T) string {
	t.Helper()
	tool := filepath.Join(testcorpus.SharedDir(), "tools", "pdu-dissect")
	var missing []string
	if _, err := os.Stat(tool); err != nil {
		missing = append(missing, tool)
	}
	for _, b := range []string{"tshark", "text2pcap", "bash"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("Wireshark check needs %s (apt-get install tshark; shared/ beside the repo or MMSRELAY_SHARED)",
			strings.Join(missing, ", "))
		if os.Getenv("MMSRELAY_REQUIRE_TSHARK") == "1" {
			t.Fatal(msg + "; MMSRELAY_REQUIRE_TSHARK=1")
		}
		t.Skip(msg)
	}
	return tool
}

// dissection is pdu-dissect's view of one file.
type dissection struct {
	Verdict string         // the stderr verdict after "FILE: ", e.g. "OK (m-send-req)"
	MMSE    map[string]any // the mmse layer of the JSON (nil if none)
	Expert  []string       // expert messages found anywhere in the JSON
}

// OK reports whether the verdict is OK (warnings allowed).
func (d dissection) OK() bool { return strings.HasPrefix(d.Verdict, "OK") }

// dissect runs pdu-dissect --json over files in batches, two at a time on
// the machine's cores, and returns the dissection of each.
func dissect(t *testing.T, tool string, files []string) map[string]dissection {
	t.Helper()
	const batch = 8
	out := map[string]dissection{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	errs := make(chan error, len(files)/batch+1)
	for i := 0; i < len(files); i += batch {
		chunk := files[i:min(i+batch, len(files))]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := dissectBatch(tool, chunk)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			for k, v := range res {
				out[k] = v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return out
}

func dissectBatch(tool string, files []string) (map[string]dissection, error) {
	cmd := exec.Command("bash", append([]string{tool, "--json"}, files...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return nil, fmt.Errorf("pdu-dissect: %v", err)
	}
	if ee != nil && ee.ExitCode() != 1 && ee.ExitCode() != 4 {
		return nil, fmt.Errorf("pdu-dissect exit %d: %s", ee.ExitCode(), stderr.String())
	}
	res := map[string]dissection{}
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		line := sc.Text()
		for _, f := range files {
			if v, ok := strings.CutPrefix(line, "pdu-dissect: "+f+": "); ok {
				res[f] = dissection{Verdict: v}
			}
		}
	}
	// One JSON array per file, in order.
	dec := json.NewDecoder(&stdout)
	for _, f := range files {
		var pkts []struct {
			Source struct {
				Layers map[string]any `json:"layers"`
			} `json:"_source"`
		}
		if err := dec.Decode(&pkts); err != nil {
			return nil, fmt.Errorf("pdu-dissect --json output for %s: %v", f, err)
		}
		d := res[f]
		for _, p := range pkts {
			if m, ok := p.Source.Layers["mmse"].(map[string]any); ok && d.MMSE == nil {
				d.MMSE = m
			}
			collectExpert(p.Source.Layers, &d.Expert)
		}
		res[f] = d
	}
	for _, f := range files {
		if res[f].Verdict == "" {
			return nil, fmt.Errorf("pdu-dissect gave no verdict for %s:\n%s", f, stderr.String())
		}
	}
	return res, nil
}

func collectExpert(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if k == "_ws.expert.message" {
				if s, ok := x.(string); ok {
					*out = append(*out, s)
				}
			}
			collectExpert(x, out)
		}
	case []any:
		for _, x := range v {
			collectExpert(x, out)
		}
	}
}

// jstr returns the string(s) at key in a JSON object: one value, or each
// value of a repeated key (an array under --no-duplicate-keys).
func jstrs(m map[string]any, key string) []string {
	switch v := m[key].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func jobj(m map[string]any, key string) map[string]any {
	o, _ := m[key].(map[string]any)
	return o
}

func jobjs(m map[string]any, key string) []map[string]any {
	switch v := m[key].(type) {
	case map[string]any:
		return []map[string]any{v}
	case []any:
		var out []map[string]any
		for _, x := range v {
			if o, ok := x.(map[string]any); ok {
				out = append(out, o)
			}
		}
		return out
	}
	return nil
}

// TestTsharkDump writes the dissection of every case as JSON to
// $MMSRELAY_TSHARK_DUMP (a directory), for looking at by hand.
func TestTsharkDump(t *testing.T) {
	dir := os.Getenv("MMSRELAY_TSHARK_DUMP")
	if dir == "" {
		t.Skip("set MMSRELAY_TSHARK_DUMP=DIR to dump the dissections")
	}
	tool := pduDissect(t)
	var files []string
	for name, m := range tsharkCases(t) {
		b, err := m.Append(nil)
		if err != nil {
			t.Fatalf("%s: Append: %v", name, err)
		}
		f := filepath.Join(dir, name+".mms")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	for f, d := range dissect(t, tool, files) {
		j, _ := json.MarshalIndent(d, "", " ")
		if err := os.WriteFile(strings.TrimSuffix(f, ".mms")+".json", j, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// wsDate is how Wireshark prints an absolute time.
func wsDate(t time.Time) string { return t.UTC().Format("Jan _2, 2006 15:04:05.000000000 UTC") }

// wsText is how Wireshark 4.0 shows a Text-string or Encoded-string-value
// in JSON: byte by byte, each octet >= 0x80 as U+FFFD, and the 0x7F quote
// octet kept. Comparing with it compares the octets we sent.
func wsText(s string) string {
	var b strings.Builder
	if len(s) > 0 && s[0] >= 0x7F {
		b.WriteByte(0x7F)
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			b.WriteRune('\uFFFD')
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func wsTime(v *TimeValue) (suffix, value string) {
	if v.Relative {
		return ".rel", fmt.Sprintf("%d.000000000", v.Seconds)
	}
	return ".abs", wsDate(time.Unix(int64(v.Seconds), 0))
}

// tsharkExpect returns, for each top-level mmse.* key Wireshark shows,
// the values m should produce.
func tsharkExpect(m *Message) map[string][]string {
	w := map[string][]string{}
	set := func(k string, v ...string) { w["mmse."+k] = append(w["mmse."+k], v...) }
	tok := func(k string, v byte) {
		if v != 0 {
			set(k, fmt.Sprintf("0x%02x", v))
		}
	}
	txt := func(k, v string) {
		if v != "" {
			set(k, wsText(v))
		}
	}
	tok("message_type", byte(m.Type))
	txt("transaction_id", m.TransactionID)
	if m.Version != 0 {
		set("mms_version", m.Version.String())
	}
	txt("message_id", m.MessageID)
	if !m.Date.IsZero() {
		set("date", wsDate(m.Date))
	}
	if m.From != nil {
		if m.From.Insert {
			set("from", "<insert address>")
		} else {
			set("from", wsText(m.From.Address.Text))
		}
	}
	for _, a := range m.To {
		set("to", wsText(a.Text))
	}
	for _, a := range m.Cc {
		set("cc", wsText(a.Text))
	}
	for _, a := range m.Bcc {
		set("bcc", wsText(a.Text))
	}
	txt("subject", m.Subject.Text)
	txt("content_location", m.ContentLocation)
	for i, c := range messageClassTokens {
		if m.MessageClass == c {
			set("message_class.id", fmt.Sprintf("0x%02x", 0x80+i))
		}
	}
	if m.MessageSize != 0 {
		set("message_size", fmt.Sprint(m.MessageSize))
	}
	tok("priority", byte(m.Priority))
	tok("delivery_report", byte(m.DeliveryReport))
	tok("read_report", byte(m.ReadReport))
	tok("report_allowed", byte(m.ReportAllowed))
	tok("sender_visibility", byte(m.SenderVisibility))
	tok("response_status", byte(m.ResponseStatus))
	txt("response_text", m.ResponseText.Text)
	tok("retrieve_status", byte(m.RetrieveStatus))
	txt("retrieve_text", m.RetrieveText.Text)
	tok("status", byte(m.Status))
	tok("read_status", byte(m.ReadStatus))
	if m.Expiry != nil {
		s, v := wsTime(m.Expiry)
		set("expiry"+s, v)
	}
	if m.DeliveryTime != nil {
		s, v := wsTime(m.DeliveryTime)
		set("delivery_time"+s, v)
	}
	for _, p := range m.PreviouslySentBy {
		set("previously_sent_by", wsText(p.Address.Text))
	}
	for _, p := range m.PreviouslySentDate {
		set("previously_sent_date", wsDate(p.Date))
	}
	// MMS 1.2/1.3 headers Wireshark 4.0 shows only generically.
	if m.MMState != 0 {
		set("header.uint", fmt.Sprint(byte(m.MMState)))
	}
	if m.CancelStatus != 0 {
		set("header.uint", fmt.Sprint(byte(m.CancelStatus)))
	}
	txt("header.string", m.CancelID)
	return w
}

// checkDissection compares Wireshark's view of an encoded m with m.
func checkDissection(t *testing.T, m *Message, d dissection) {
	t.Helper()
	if !d.OK() || strings.Contains(d.Verdict, "warning") {
		t.Errorf("pdu-dissect verdict = %q, want OK", d.Verdict)
	}
	if len(d.Expert) > 0 {
		t.Errorf("expert items: %q", d.Expert)
	}
	if d.MMSE == nil {
		t.Fatalf("no mmse layer in the dissection")
	}
	want := tsharkExpect(m)
	for k, v := range want {
		if got := jstrs(d.MMSE, k); !slicesEqual(got, v) {
			t.Errorf("tshark %s = %q, want %q", k, got, v)
		}
	}
	for k := range d.MMSE {
		if strings.HasPrefix(k, "mmse.") && !strings.HasSuffix(k, "_tree") && want[k] == nil {
			t.Errorf("tshark shows %s = %q, which we did not send", k, jstrs(d.MMSE, k))
		}
	}
	for i, p := range m.PreviouslySentBy {
		trees := jobjs(d.MMSE, "mmse.previously_sent_by_tree")
		if i >= len(trees) || jstrs(trees[i], "mmse.previously_sent_by.forward_count")[0] != fmt.Sprint(p.Count) {
			t.Errorf("tshark previously_sent_by[%d] tree = %v, want count %d", i, trees, p.Count)
		}
	}
	for i, p := range m.PreviouslySentDate {
		trees := jobjs(d.MMSE, "mmse.previously_sent_date_tree")
		if i >= len(trees) || !slicesEqual(jstrs(trees[i], "mmse.previously_sent_date.forward_count"), []string{fmt.Sprint(p.Count)}) {
			t.Errorf("tshark previously_sent_date[%d] tree = %v, want count %d", i, trees, p.Count)
		}
	}
	if m.ContentType.Type == "" {
		return
	}
	if got := jstrs(d.MMSE, "wsp.header.content_type"); !slicesEqual(got, []string{m.ContentType.Type}) {
		t.Errorf("tshark Content-Type = %q, want %q", got, m.ContentType.Type)
	}
	ctt := jobj(d.MMSE, "wsp.header.content_type_tree")
	checkParams(t, "message", m.ContentType, ctt)
	if !m.ContentType.IsMultipart() {
		return
	}
	mp := jobj(jobj(d.MMSE, "wsp.post.data"), "Multipart body")
	parts := jobjs(mp, "wsp.multipart_tree")
	if len(parts) != len(m.Parts) || len(jstrs(mp, "wsp.multipart")) != len(m.Parts) {
		t.Fatalf("tshark shows %d parts (%q), want %d", len(parts), jstrs(mp, "wsp.multipart"), len(m.Parts))
	}
	for i, p := range m.Parts {
		wp := parts[i]
		name := fmt.Sprintf("part %d", i+1)
		if got := jstrs(wp, "wsp.header.content_type"); !slicesEqual(got, []string{p.ContentType.Type}) {
			t.Errorf("tshark %s Content-Type = %q, want %q", name, got, p.ContentType.Type)
		}
		checkParams(t, name, p.ContentType, jobj(wp, "wsp.header.content_type_tree"))
		hdr := jobj(wp, "wsp.headers")
		if got := jstrs(hdr, "wsp.header.content_id"); p.ContentID != "" && !slicesEqual(got, []string{`"` + p.ContentID + `"`}) {
			t.Errorf("tshark %s Content-ID = %q, want %q", name, got, `"`+p.ContentID+`"`)
		}
		if got := jstrs(hdr, "wsp.header.content_location"); p.ContentLocation != "" && !slicesEqual(got, []string{p.ContentLocation}) {
			t.Errorf("tshark %s Content-Location = %q, want %q", name, got, p.ContentLocation)
		}
		// The body as the sub-dissector saw it: its octets where it
		// shows them, else its lines, proving the part's extent.
		switch {
		case wp["media"] != nil:
			checkHexBody(t, name, jstrs(jobj(wp, "media"), "media.type"), p.Body)
		case wp["data"] != nil:
			checkHexBody(t, name, jstrs(jobj(wp, "data"), "data.data"), p.Body)
			if got := jstrs(jobj(wp, "data"), "data.len"); !slicesEqual(got, []string{fmt.Sprint(len(p.Body))}) {
				t.Errorf("tshark %s data.len = %q, want %d", name, got, len(p.Body))
			}
		case wp["data-text-lines"] != nil:
			var lines []string
			for k := range jobj(wp, "data-text-lines") {
				lines = append(lines, k)
			}
			if strings.Join(lines, "\n") != string(p.Body) {
				t.Errorf("tshark %s text = %q, want %q", name, lines, p.Body)
			}
		case wp["smil"] != nil:
			if !strings.HasPrefix(string(p.Body), "<smil") {
				t.Errorf("tshark %s dissected as SMIL, but it is %q", name, p.Body)
			}
		default:
			t.Errorf("tshark %s: no dissected body (keys %v)", name, keys(wp))
		}
	}
}

// checkParams compares the parameters Wireshark shows with ct's.
func checkParams(t *testing.T, name string, ct ContentType, tree map[string]any) {
	t.Helper()
	for _, p := range ct.Params {
		key := "wsp.parameter." + p.Name
		if p.Name == "type" {
			key = "wsp.parameter.upart.type"
		}
		got := jstrs(tree, key)
		if len(got) != 1 || !strings.EqualFold(got[0], p.Value) {
			t.Errorf("tshark %s parameter %s = %q, want %q", name, p.Name, got, p.Value)
		}
	}
}

func checkHexBody(t *testing.T, name string, hexs []string, want []byte) {
	t.Helper()
	if len(hexs) != 1 {
		t.Errorf("tshark %s body: %d values", name, len(hexs))
		return
	}
	var got []byte
	for _, h := range strings.Split(hexs[0], ":") {
		var c byte
		if _, err := fmt.Sscanf(h, "%02x", &c); err != nil {
			t.Errorf("tshark %s body: bad hex %q", name, h)
			return
		}
		got = append(got, c)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("tshark %s body: %d octets differing from the %d we sent", name, len(got), len(want))
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestTshark encodes a PDU of every type with our encoder and checks what
// Wireshark's MMSE dissector reads from it against what we meant.
func TestTshark(t *testing.T) {
	tool := pduDissect(t)
	dir := t.TempDir()
	cases := tsharkCases(t)
	var files []string
	byFile := map[string]string{}
	for name, m := range cases {
		b, err := m.Append(nil)
		if err != nil {
			t.Fatalf("%s: Append: %v", name, err)
		}
		// What we check Wireshark against must be what we decode too.
		if m2, err := (Decoder{Strict: true}).Decode(b); err != nil {
			t.Errorf("%s: strict Decode(Append(m)) = %v", name, err)
		} else if !sameMessage(normalise(m), m2) {
			t.Errorf("%s: Decode(Append(m)) = %+v, want %+v", name, m2, m)
		}
		f := filepath.Join(dir, name+".mms")
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		byFile[f] = name
	}
	// The features the cases must exercise, checked on the bytes.
	sendReq, _ := cases["send-req"].Append(nil)
	notif, _ := cases["notification-ind"].Append(nil)
	retr, _ := cases["retrieve-conf"].Append(nil)
	for _, c := range []struct {
		what string
		pdu  []byte
		sub  []byte
	}{
		{"Length-quote Value-length (1f) of a long subject", notif, []byte{0x96, 0x1f, byte(len(longSubj) + 2), 0xea}},
		{"0x7F quote of a subject starting with a non-ASCII octet", retr, []byte{0xea, 0x7f, 0xc3, 0x89}},
		{"insert-address From", sendReq, []byte{0x89, 0x01, 0x81}},
		{"relative expiry", sendReq, []byte{0x88, 0x05, 0x81, 0x03, 0x01, 0x51, 0x80}},
		{"application/smil as text", sendReq, []byte("application/smil\x00")},
		{"JPEG SOI", sendReq, []byte{0xff, 0xd8, 0xff}},
	} {
		if !bytes.Contains(c.pdu, c.sub) {
			t.Errorf("test PDUs lack %s (% x)", c.what, c.sub)
		}
	}
	for f, d := range dissect(t, tool, files) {
		name := byFile[f]
		t.Run(name, func(t *testing.T) { checkDissection(t, cases[name], d) })
	}
}

// TestTsharkCorpusReencoded decodes every corpus PDU, re-encodes it with
// Append and requires Wireshark's verdict on the result to be the one it
// gives the original, with the same header values and parts. A file that
// re-encodes to its own octets has that verdict trivially and is not run
// through tshark again.
func TestTsharkCorpusReencoded(t *testing.T) {
	tool := pduDissect(t)
	files := testcorpus.Files(t, "pdu")
	dir := t.TempDir()
	var run []string
	pair := map[string]string{} // original → re-encoded
	same := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pdu := b
		if IsPush(b) {
			if _, inner, err := UnwrapPush(b); err == nil {
				pdu = inner
			}
		}
		m, err := Decode(pdu)
		if err != nil {
			t.Logf("%s: not decoded (%v): nothing to re-encode", f, err)
			continue
		}
		out, err := m.Append(nil)
		if err != nil {
			t.Errorf("%s: Append(Decode(x)) = %v", f, err)
			continue
		}
		if bytes.Equal(out, b) {
			same++
			continue
		}
		re := filepath.Join(dir, fmt.Sprintf("%03d-%s", len(run), filepath.Base(f)))
		if err := os.WriteFile(re, out, 0o644); err != nil {
			t.Fatal(err)
		}
		pair[f] = re
		run = append(run, f, re)
	}
	t.Logf("%d corpus PDUs re-encode to their own octets; %d differ and go through tshark", same, len(pair))
	res := dissect(t, tool, run)
	for orig, re := range pair {
		o, r := res[orig], res[re]
		rel, _ := filepath.Rel(testcorpus.Dir(t, "pdu"), orig)
		t.Run(rel, func(t *testing.T) {
			if verdictClass(o.Verdict) != verdictClass(r.Verdict) {
				t.Errorf("pdu-dissect: original %q, re-encoded %q", o.Verdict, r.Verdict)
			}
			if o.MMSE == nil || r.MMSE == nil {
				return
			}
			for k, v := range o.MMSE {
				if _, ok := v.(string); ok && strings.HasPrefix(k, "mmse.") {
					if got := jstrs(r.MMSE, k); !slicesEqual(unquote7F(got), jstrs(o.MMSE, k)) {
						t.Errorf("tshark %s: original %q, re-encoded %q", k, jstrs(o.MMSE, k), got)
					}
				}
			}
			op := jobjs(jobj(jobj(o.MMSE, "wsp.post.data"), "Multipart body"), "wsp.multipart_tree")
			rp := jobjs(jobj(jobj(r.MMSE, "wsp.post.data"), "Multipart body"), "wsp.multipart_tree")
			if len(op) != len(rp) {
				t.Fatalf("tshark parts: original %d, re-encoded %d", len(op), len(rp))
			}
			for i := range op {
				for _, k := range []string{"wsp.header.content_type"} {
					if a, b := jstrs(op[i], k), jstrs(rp[i], k); !slicesEqual(a, b) {
						t.Errorf("tshark part %d %s: original %q, re-encoded %q", i+1, k, a, b)
					}
				}
				for _, k := range []string{"wsp.header.content_id", "wsp.header.content_location"} {
					if a, b := jstrs(jobj(op[i], "wsp.headers"), k), jstrs(jobj(rp[i], "wsp.headers"), k); !slicesEqual(trimQuotes(a), trimQuotes(b)) {
						t.Errorf("tshark part %d %s: original %q, re-encoded %q", i+1, k, a, b)
					}
				}
			}
		})
	}
}

// unquote7F drops the 0x7F quote octet Wireshark keeps in front of a text
// whose first octet is >= 0x80 (shown as U+FFFD): Append writes the quote
// the spec asks for where some originals left it out.
func unquote7F(v []string) []string {
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = s
		if rest, ok := strings.CutPrefix(s, "\x7f"); ok && strings.HasPrefix(rest, "\uFFFD") {
			out[i] = rest
		}
	}
	return out
}

// trimQuotes drops the quote of a Content-ID: Append always writes the
// Quoted-string form, where some originals sent a plain Text-string.
func trimQuotes(v []string) []string {
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = strings.Trim(s, `"`)
	}
	return out
}

// verdictClass reduces a pdu-dissect verdict to OK or not, and the type
// (a WSP push around the original is unwrapped before re-encoding).
func verdictClass(v string) string {
	v = strings.Replace(v, "WSP push: ", "", 1)
	ok, _, _ := strings.Cut(v, " ")
	_, typ, _ := strings.Cut(v, "(")
	return ok + " (" + typ
}
