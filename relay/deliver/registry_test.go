package deliver

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmsrelay/mmsrelay/config"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// TestRegistryMatchesConfig checks that the configuration accepts exactly
// the route types Build knows: a type in one and not the other would pass
// config.Load and fail at start, or never be reachable.
func TestRegistryMatchesConfig(t *testing.T) {
	got := Types()
	want := slices.Sorted(slices.Values(config.RouteTypes()))
	if !slices.Equal(got, want) {
		t.Errorf("Types() = %v, config.RouteTypes() = %v: add the type to both", got, want)
	}
	// Every type config accepts builds from a configuration config checked.
	// The route sets every required key of every type (a new type with a
	// new required key adds it here).
	for _, typ := range config.RouteTypes() {
		c, err := config.Parse("[[route]]\nprefix = \"+\"\ntype = \"" + typ + "\"\ndir = \"/tmp/o\"\n" +
			"host = \"127.0.0.1:25\"\ndomain = \"d.test\"\ngateway_domain = \"gw.test\"\nurl = \"http://mmsc.test/\"\n")
		if err != nil {
			t.Fatalf("config for type %s: %v", typ, err)
		}
		if r, err := Build(c.Routes[0], Env{LocalDomain: "mms.test"}); err != nil || r == nil {
			t.Errorf("Build(type %s) = %v, %v", typ, r, err)
		}
	}
}

func TestBuild(t *testing.T) {
	describe := func(*pdu.Message) any { return "described" }
	env := Env{Hostname: "relay.test", OriginatorSystem: "system@mms.relay.test", LocalDomain: "mms.relay.test", Describe: describe}

	r, err := Build(config.Route{Type: "outbox", Dir: t.TempDir()}, env)
	o, ok := r.(*Outbox)
	if err != nil || !ok || o.Describe == nil || r.Wire(&Message{}).Interface != mapping.InterfacePDU {
		t.Fatalf("Build(outbox) = %#v, %v", r, err)
	}
	if res := r.Deliver(context.Background(), testMessage()); res[0].Outcome != Delivered {
		t.Errorf("outbox from Build: Deliver = %+v", res)
	}
	if m, err := filepath.Glob(filepath.Join(o.Dir, "T-1.*")); err != nil || len(m) != 2 {
		t.Errorf("outbox from Build wrote %v, %v", m, err)
	}

	rc := config.Route{Type: "mm4", Host: "127.0.0.1:2526", Domain: "mms.peer.test", TLS: "starttls",
		Username: "u", Password: "p", AckRequest: true, MaxRate: 5, MaxConnections: 2}
	r, err = Build(rc, env)
	m4, ok := r.(*MM4)
	if err != nil || !ok || r.Wire(&Message{}).Interface != mapping.InterfaceMM4 {
		t.Fatalf("Build(mm4) = %#v, %v", r, err)
	}
	wantPeer := SMTPPeer{Addr: "127.0.0.1:2526", TLS: "starttls", Username: "u", Password: "p", HeloName: "relay.test",
		MaxRate: 5, MaxConnections: 2}
	if p := m4.Peer; p.Addr != wantPeer.Addr || p.TLS != wantPeer.TLS || p.Username != wantPeer.Username ||
		p.Password != wantPeer.Password || p.HeloName != wantPeer.HeloName || p.MaxRate != wantPeer.MaxRate ||
		p.MaxConnections != wantPeer.MaxConnections {
		t.Errorf("Build(mm4) peer = %+v, want %+v", p, &wantPeer)
	}
	if m4.Domain != "mms.peer.test" || m4.OriginatorSystem != env.OriginatorSystem || m4.LocalDomain != env.LocalDomain || !m4.AckRequest {
		t.Errorf("Build(mm4) = %+v", m4)
	}

	r, err = Build(config.Route{Type: "mm3", Host: "127.0.0.1:2527", GatewayDomain: "gw.test", TLS: "none"}, env)
	m3, ok := r.(*MM3)
	if err != nil || !ok || r.Wire(&Message{}).Interface != mapping.InterfaceMM3 || m3.GatewayDomain != "gw.test" ||
		m3.Peer.Addr != "127.0.0.1:2527" || m3.Peer.HeloName != "relay.test" {
		t.Errorf("Build(mm3) = %#v, %v", r, err)
	}

	for _, typ := range []string{"mm7", "pigeon", ""} {
		if r, err := Build(config.Route{Type: typ}, env); err == nil || !strings.Contains(err.Error(), "not available") {
			t.Errorf("Build(type %q) = %v, %v, want not available", typ, r, err)
		}
	}
}
