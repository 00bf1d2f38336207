package deliver

import (
	"fmt"
	"sort"

	"github.com/mmsrelay/mmsrelay/config"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// Env is what the routes of every type share: the relay's own names and
// the functions the program lends them. Build passes it to each builder
// together with the route's own configuration.
type Env struct {
	// Hostname is our host name, said in EHLO to SMTP peers.
	Hostname string
	// OriginatorSystem is our MM4 system address, where peers send
	// MM4_forward.RES and delivery reports (X-Mms-Originator-System).
	OriginatorSystem string
	// LocalDomain is our first MMS domain, for the MM4 reverse path of a
	// phone originator.
	LocalDomain string
	// Describe turns a PDU into the JSON object the outbox writes beside
	// it; nil writes a short description of the headers.
	Describe func(*pdu.Message) any
}

// builder makes a route of one type from its checked configuration. Each
// lives in its route's file.
type builder func(rc config.Route, env Env) (Route, error)

// builders is the registry: one entry per route type. Adding a type adds
// its builder here and its keys in config (routeTypes); nothing in the
// queue changes. TestRegistryMatchesConfig checks the two name the same
// types.
var builders = map[string]builder{
	"outbox": buildOutbox,
	"mm4":    buildMM4,
	"mm3":    buildMM3,
}

// Build returns the route that rc configures. rc is expected to have been
// checked by config.Load; Build fails for a type it does not know.
func Build(rc config.Route, env Env) (Route, error) {
	b, ok := builders[rc.Type]
	if !ok {
		return nil, fmt.Errorf("type %s is not available", rc.Type)
	}
	r, err := b(rc, env)
	if err != nil {
		return nil, fmt.Errorf("type %s: %w", rc.Type, err)
	}
	return r, nil
}

// Types returns the route types Build knows, sorted.
func Types() []string {
	names := make([]string, 0, len(builders))
	for name := range builders {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
