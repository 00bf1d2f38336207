package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSampleIsDefaults(t *testing.T) {
	c, err := Load(filepath.Join("..", "config.toml"))
	if err != nil {
		t.Fatalf("Load(config.toml): %v", err)
	}
	d := Default()
	c.Source, d.Source = "", ""
	// The sample leaves the host name to the default.
	if !reflect.DeepEqual(c, d) {
		t.Errorf("config.toml differs from the built-in defaults:\n file %+v\n defaults %+v", c, d)
	}
	if got := d.SMTP.Listen; len(got) != 1 || got[0] != "127.0.0.1:2525" {
		t.Errorf("default listen = %v", got)
	}
	if r, ok := d.RouteFor("+15551234567"); !ok || r.Type != "outbox" || r.Dir != "./mmsrelay-data/outbox" {
		t.Errorf("default route = %+v, %v", r, ok)
	}
}

func TestErrorsNameKeys(t *testing.T) {
	_, err := Parse(`
[smtp]
listen = ["nonsense"]
max_recipients = -1
colour = "blue"
[mms]
default_region = "USA"
group_mode = "party"
[admin]
listen = "0.0.0.0:8025"
[[route]]
prefix = "1"
type = "mm4"
[[route]]
prefix = "+44"
type = "carrier-pigeon"
profile = "nope"
`)
	if err == nil {
		t.Fatal("Parse accepted a bad config")
	}
	for _, want := range []string{"smtp.listen", "smtp.max_recipients", "smtp.colour: unknown key", "mms.default_region",
		"mms.group_mode", "admin.token", "route[0].prefix", "route[0].host", "route[0].domain", "route[1].type",
		"route[1].profile"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
}

func TestRoutesAndDurations(t *testing.T) {
	c, err := Parse(`
[queue]
lifetime = "3d"
[[route]]
prefix = "+"
type = "outbox"
[[route]]
prefix = "+44"
type = "mm4"
host = "127.0.0.1:2526"
domain = "mms.peer.test"
tls = "tls"
max_rate = 5
[[route]]
prefix = "+447"
type = "mm3"
host = "127.0.0.1:2527"
gateway_domain = "gw.test"
profile = "basic"
[[mm4_peer]]
name = "peer"
networks = ["10.1.2.0/24"]
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Queue.Lifetime.Duration != 72*time.Hour {
		t.Errorf("lifetime = %v", c.Queue.Lifetime)
	}
	for number, want := range map[string]string{"+15551234567": "outbox", "+442071234567": "mm4", "+447911123456": "mm3"} {
		if r, ok := c.RouteFor(number); !ok || r.Type != want {
			t.Errorf("RouteFor(%s) = %+v, want %s", number, r, want)
		}
	}
	if !c.SMTP.Trusted(netip.MustParseAddr("127.0.0.5")) || c.SMTP.Trusted(netip.MustParseAddr("10.0.0.1")) {
		t.Error("trusted networks wrong")
	}
	if len(c.Peers[0].Prefixes) != 1 || !c.Peers[0].Prefixes[0].Contains(netip.MustParseAddr("10.1.2.3")) {
		t.Errorf("peer prefixes = %v", c.Peers[0].Prefixes)
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.toml")); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("Load(missing) = %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// media: transcode keys (adapt.Transcoder).
func TestMediaTranscode(t *testing.T) {
	d := Default()
	if m := d.Media; m.Transcode || m.FFmpeg != "ffmpeg" || m.FFprobe != "ffprobe" || m.Timeout.Duration != time.Minute {
		t.Errorf("default [media] = %+v, want off, ffmpeg, ffprobe, 1m", m)
	}
	// Off: the programs are not looked for.
	if _, err := Parse("[media]\nffmpeg = \"/nonexistent/ffmpeg\"\n"); err != nil {
		t.Errorf("Parse(transcode off, missing ffmpeg) = %v, want no error", err)
	}
	_, err := Parse("[media]\ntranscode = true\nffmpeg = \"/nonexistent/ffmpeg\"\nffprobe = \"no-such-ffprobe-here\"\n")
	if err == nil || !strings.Contains(err.Error(), "media.ffmpeg") || !strings.Contains(err.Error(), "media.ffprobe") {
		t.Errorf("Parse(transcode on, missing programs) = %v, want errors naming media.ffmpeg and media.ffprobe", err)
	}
	exe, err := os.Executable() // any program that exists
	if err != nil {
		t.Skip(err)
	}
	c, err := Parse("[media]\ntranscode = true\ntimeout = \"2m\"\nffmpeg = " + strconv.Quote(exe) + "\nffprobe = " + strconv.Quote(exe) + "\n")
	if err != nil {
		t.Fatalf("Parse(transcode on, programs found) = %v", err)
	}
	if !c.Media.Transcode || c.Media.FFmpeg != exe || c.Media.Timeout.Duration != 2*time.Minute {
		t.Errorf("[media] = %+v", c.Media)
	}
}

func TestOutboundAndCarriers(t *testing.T) {
	c, err := Parse("[outbound]\nsmarthost = \"127.0.0.1:587\"\ntls = \"starttls\"\nusername = \"u\"\npassword = \"p\"\n")
	if err != nil || c.Outbound.TLS != "starttls" || c.Outbound.Username != "u" {
		t.Errorf("outbound = %+v, %v", c.Outbound, err)
	}
	for _, bad := range []string{
		"[outbound]\ntls = \"ssl\"\n",
		"[outbound]\nusername = \"u\"\n",
		"[reply]\ndomain = \"r.example\"\ncarriers_file = \"/nonexistent/carriers.json\"\n",
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted it", bad)
		}
	}
}

func TestOutboundIMAP(t *testing.T) {
	c, err := Parse("[outbound]\nimap_domains = [\"example.net\"]\nimap_host = \"127.0.0.1:993\"\nimap_login = \"%a*m\"\n")
	if err != nil || c.Outbound.IMAPHost != "127.0.0.1:993" || len(c.Outbound.IMAPDomains) != 1 {
		t.Errorf("outbound imap = %+v, %v", c.Outbound, err)
	}
	if _, err := Parse("[outbound]\nimap_domains = [\"example.net\"]\n"); err == nil || !strings.Contains(err.Error(), "outbound.imap_host") {
		t.Errorf("imap_domains without imap_host: %v", err)
	}
}

// TestRouteErrors checks the whole error for each kind of bad [[route]],
// one route at a time.
func TestRouteErrors(t *testing.T) {
	for _, tc := range []struct{ route, want string }{
		{"type = \"pigeon\"", `route[0].type: "pigeon": use outbox, mm4 or mm3`},
		{"type = \"\"", `route[0].type: "": use outbox, mm4 or mm3`},
		{"type = \"mm4\"", "route[0].host: missing: the peer MMSC's host:port\nroute[0].domain: missing: the peer's MMS domain"},
		{"type = \"mm4\"\nhost = \"peer\"\ndomain = \"d\"\ntls = \"ssl\"",
			"route[0].host: \"peer\" is not host:port\nroute[0].tls: \"ssl\": use none, starttls or tls"},
		{"type = \"mm3\"", "route[0].host: missing: the gateway's host:port\nroute[0].gateway_domain: missing"},
		{"type = \"mm3\"\nhost = \"127.0.0.1:25\"", "route[0].gateway_domain: missing"},
		{"type = \"mm7\"", "route[0].url: missing\nroute[0].type: \"mm7\" is not available yet"},
		{"type = \"mm1\"\nurl = \"http://mmsc.test/\"", `route[0].type: "mm1" is not available yet`},
	} {
		_, err := Parse("[[route]]\nprefix = \"+\"\n" + tc.route + "\n")
		if err == nil || err.Error() != tc.want {
			t.Errorf("Parse(route %q) = %v, want:\n%s", tc.route, err, tc.want)
		}
	}
}

// TestRouteTypes checks the route types the configuration accepts and the
// defaults each gets.
func TestRouteTypes(t *testing.T) {
	if got := strings.Join(RouteTypes(), ","); got != "outbox,mm4,mm3" {
		t.Errorf("RouteTypes() = %s, want outbox,mm4,mm3", got)
	}
	c, err := Parse(`
[server]
data_dir = "/var/lib/mmsrelay"
[[route]]
prefix = "+1"
type = "outbox"
[[route]]
prefix = "+44"
type = "mm4"
host = "127.0.0.1:2526"
domain = "mms.peer.test"
[[route]]
prefix = "+33"
type = "mm3"
host = "127.0.0.1:2527"
gateway_domain = "gw.test"
tls = "starttls"
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []Route{
		{Prefix: "+1", Type: "outbox", Profile: "default", Dir: "/var/lib/mmsrelay/outbox"},
		{Prefix: "+44", Type: "mm4", Profile: "default", Host: "127.0.0.1:2526", Domain: "mms.peer.test", TLS: "none"},
		{Prefix: "+33", Type: "mm3", Profile: "default", Host: "127.0.0.1:2527", GatewayDomain: "gw.test", TLS: "starttls"},
	}
	if !reflect.DeepEqual(c.Routes, want) {
		t.Errorf("routes = %+v\nwant %+v", c.Routes, want)
	}
}
