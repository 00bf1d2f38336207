// Package config reads mmsrelay's TOML configuration into typed values.
//
// Load decodes the file, refuses keys it does not know, applies defaults in
// one place, parses strings once into typed fields (addresses, networks,
// durations) and reports every problem at once, each naming its key. The
// rest of the program takes the parts it needs from the result; nothing
// reads the file again but a reload (SIGHUP), which calls Load anew.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration.
type Config struct {
	Server   Server    `toml:"server"`
	SMTP     SMTP      `toml:"smtp"`
	MMS      MMS       `toml:"mms"`
	Admin    Admin     `toml:"admin"`
	Queue    Queue     `toml:"queue"`
	Records  Records   `toml:"records"`
	Reply    Reply     `toml:"reply"`
	Outbound Outbound  `toml:"outbound"`
	DKIM     DKIM      `toml:"dkim"`
	IMAP     []IMAP    `toml:"imap"`
	Media    Media     `toml:"media"`
	Routes   []Route   `toml:"route"`
	Profiles []Profile `toml:"profile"`
	Peers    []MM4Peer `toml:"mm4_peer"`
	Users    []User    `toml:"user"`
	Quotas   []Quota   `toml:"quota"`
	Source   string    `toml:"-"` // the file it came from; "" for built-in defaults
}

// Server holds the process-wide settings.
type Server struct {
	Hostname string `toml:"hostname"` // our name in SMTP greetings and Message-IDs
	DataDir  string `toml:"data_dir"` // store, outbox, records
	LogLevel string `toml:"log_level"`
}

// SMTP configures the listeners that take mail in.
type SMTP struct {
	Listen           []string `toml:"listen"`            // MX-facing listeners
	SubmissionListen []string `toml:"submission_listen"` // AUTH after TLS required
	TrustedNetworks  []string `toml:"trusted_networks"`
	MaxMessageBytes  int64    `toml:"max_message_bytes"`
	MaxRecipients    int      `toml:"max_recipients"`
	TLSCert          string   `toml:"tls_cert"`
	TLSKey           string   `toml:"tls_key"`
	// Limits per client IP and per sender.
	MaxConnectionsPerIP    int            `toml:"max_connections_per_ip"`
	MessagesPerSenderHour  int            `toml:"messages_per_sender_per_hour"`
	AllowedSenders         []string       `toml:"allowed_senders"` // empty: anyone
	Postmaster             string         `toml:"postmaster"`      // where postmaster@ and abuse@ mail goes
	ReadTimeout            Duration       `toml:"read_timeout"`
	MinFreeDiskBytes       int64          `toml:"min_free_disk_bytes"`
	TrustedNetworkPrefixes []netip.Prefix `toml:"-"`
}

// MMS configures the conversion.
type MMS struct {
	Domains         []string `toml:"domains"`
	DefaultRegion   string   `toml:"default_region"`
	ShortCodes      []string `toml:"short_codes"`
	StrictNumbers   bool     `toml:"strict_numbers"`
	GroupMode       string   `toml:"group_mode"` // "group" or "individual"
	SubjectMaxChars int      `toml:"subject_max_chars"`
	StripQuotes     bool     `toml:"strip_quotes"`
	Expiry          Duration `toml:"expiry"`
	DeliveryReport  bool     `toml:"delivery_report"`
	MessageClass    string   `toml:"message_class"`
	// OriginatorSystem is our system address for MM4 answers and reports;
	// default "system@<first MMS domain>".
	OriginatorSystem string `toml:"originator_system"`
}

// Admin configures the admin listener (metrics, health, queue API).
type Admin struct {
	Listen string `toml:"listen"`
	Token  string `toml:"token"` // required when Listen is not loopback
}

// Queue configures retries.
type Queue struct {
	Lifetime    Duration `toml:"lifetime"`
	RetryMin    Duration `toml:"retry_min"`
	RetryMax    Duration `toml:"retry_max"`
	Workers     int      `toml:"workers"`
	ResponseTTL Duration `toml:"response_timeout"` // wait for an MM4_forward.RES
}

// Records configures delivery records and retention.
type Records struct {
	KeepBodies  Duration `toml:"keep_bodies"`
	KeepRecords Duration `toml:"keep_records"`
}

// Reply configures the way back (phone → email).
type Reply struct {
	Domain string `toml:"domain"`
	From   string `toml:"from"` // "masked" or "direct"
	// FromByDomain overrides From for single MMS domains:
	// { "mms.example.net" = "direct" }.
	FromByDomain map[string]string `toml:"from_by_domain"`
	TokenTTL     Duration          `toml:"token_ttl"`
	// WrongNumber is what a reply from a number outside the conversation
	// gets: "refuse" or "quarantine".
	WrongNumber string `toml:"wrong_number"`
	// Unmapped is what a reply to an unknown or expired address gets:
	// "refuse" or "catchall" (then CatchAll is the mailbox).
	Unmapped string `toml:"unmapped"`
	CatchAll string `toml:"catchall"`
	// OptOutScope: STOP opts out of the one sender ("sender") or all ("all").
	OptOutScope string `toml:"optout_scope"`
	// CarriersFile adds or overrides carrier boilerplate rules (JSON, the
	// form of mapping/carriers.json), merged by carrier name.
	CarriersFile string `toml:"carriers_file"`
	HelpText     string `toml:"help_text"`
	StopText     string `toml:"stop_text"`
	StartText    string `toml:"start_text"`
}

// IMAP is a mailbox the relay polls for handset replies (MM3 mail from a
// carrier's gateway, or an MMS as application/vnd.wap.mms-message).
type IMAP struct {
	Name      string   `toml:"name"`
	Host      string   `toml:"host"` // host:port
	TLS       string   `toml:"tls"`  // "tls" (default), "starttls" or "none"
	Username  string   `toml:"username"`
	Password  string   `toml:"password"`
	Folder    string   `toml:"folder"`    // default INBOX
	Processed string   `toml:"processed"` // folder to move handled mail to; "" = delete
	Interval  Duration `toml:"interval"`  // polling when the server has no IDLE
}

// DKIM signs the replies the relay writes (From: +1…@the reply domain).
type DKIM struct {
	Domain   string `toml:"domain"`
	Selector string `toml:"selector"`
	KeyFile  string `toml:"key_file"` // PEM, from mmsrelay dkim-keygen
}

// Outbound configures how the relay sends its own email (bounces, DSNs,
// MM4 answers).
type Outbound struct {
	// Smarthost ("host:port") takes all of it; empty: straight to each
	// recipient domain's MX hosts.
	Smarthost string `toml:"smarthost"`
	// TLS to the smarthost: "none" (default), "starttls" or "tls".
	TLS      string `toml:"tls"`
	Username string `toml:"username"` // SMTP AUTH to the smarthost
	Password string `toml:"password"`
	// RequireTLS makes direct MX delivery insist on STARTTLS with a valid
	// certificate (default: opportunistic STARTTLS, as MTAs do).
	RequireTLS bool `toml:"require_tls"`
	// IMAP delivery for the domains an ISP hosts: the email is appended
	// straight into the recipient's mailbox instead of sent over SMTP.
	IMAPDomains  []string `toml:"imap_domains"`
	IMAPHost     string   `toml:"imap_host"`     // host:port
	IMAPTLS      string   `toml:"imap_tls"`      // "tls" (default), "starttls", "none"
	IMAPLogin    string   `toml:"imap_login"`    // %a address, %l local part, %d domain; e.g. "%a*mmsrelay"
	IMAPPassword string   `toml:"imap_password"` // e.g. a Dovecot master user's password
	IMAPFolder   string   `toml:"imap_folder"`   // default INBOX
}

// Media configures the transcoding of audio and video (to AMR-NB or
// 3GPP within a profile's budget) with ffmpeg. Off by default.
type Media struct {
	Transcode bool     `toml:"transcode"`
	FFmpeg    string   `toml:"ffmpeg"`  // program name (looked up in PATH) or path
	FFprobe   string   `toml:"ffprobe"` // program name (looked up in PATH) or path
	Timeout   Duration `toml:"timeout"` // per audio or video part
}

// Route sends numbers with a prefix to an interface.
type Route struct {
	Prefix         string  `toml:"prefix"`
	Type           string  `toml:"type"`
	Profile        string  `toml:"profile"`
	Dir            string  `toml:"dir"`
	Host           string  `toml:"host"`
	Domain         string  `toml:"domain"`
	TLS            string  `toml:"tls"`
	Username       string  `toml:"username"`
	Password       string  `toml:"password"`
	AckRequest     bool    `toml:"ack_request"`
	MaxRate        float64 `toml:"max_rate"`
	MaxConnections int     `toml:"max_connections"`
	GatewayDomain  string  `toml:"gateway_domain"`
	URL            string  `toml:"url"`
}

// Profile overrides or adds a content adaptation profile.
type Profile struct {
	Name            string   `toml:"name"`
	MaxMessageBytes int      `toml:"max_message_bytes"`
	MaxWidth        int      `toml:"max_width"`
	MaxHeight       int      `toml:"max_height"`
	AllowedTypes    []string `toml:"allowed_types"`
	MaxTextBytes    int      `toml:"max_text_bytes"`
	MaxPixels       int64    `toml:"max_pixels"`
}

// MM4Peer is an MMSC whose MM4 traffic (.REQ, .RES, reports) we take.
type MM4Peer struct {
	Name     string         `toml:"name"`
	Networks []string       `toml:"networks"`  // source addresses (CIDR)
	TLSNames []string       `toml:"tls_names"` // verified client certificate names
	Users    []string       `toml:"users"`     // SMTP AUTH users
	Prefixes []netip.Prefix `toml:"-"`
}

// User may submit mail with SMTP AUTH.
type User struct {
	Name         string `toml:"name"`
	PasswordHash string `toml:"password_hash"` // bcrypt
}

// Quota limits what one sender may send.
type Quota struct {
	Sender  string `toml:"sender"`   // address, or "@domain"
	PerHour int    `toml:"per_hour"` // messages
	PerDay  int    `toml:"per_day"`
}

// Duration is a time.Duration written as "90s", "15m", "48h" or "7d".
type Duration struct{ time.Duration }

// UnmarshalText parses the duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	d.Duration = v
	return err
}

// MarshalText writes the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// ParseDuration is time.ParseDuration plus a "d" (24h) unit.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.ParseFloat(n, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(v * float64(24*time.Hour)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return v, nil
}

// Default returns the built-in configuration: a working local setup with
// SMTP on 127.0.0.1:2525 for the MMS domain mms.localhost, every number to
// the outbox folder under ./mmsrelay-data.
func Default() *Config {
	c := &Config{}
	c.applyDefaults(nil)
	if errs := c.validate(); len(errs) > 0 {
		panic(fmt.Sprintf("config: built-in defaults are invalid: %v", errors.Join(errs...)))
	}
	return c
}

// Load reads and checks the configuration file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	c.Source = path
	return c, nil
}

// Parse reads and checks a configuration from TOML text.
func Parse(text string) (*Config, error) {
	c := &Config{}
	md, err := toml.Decode(text, c)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, k := range md.Undecoded() {
		errs = append(errs, fmt.Errorf("%s: unknown key", k))
	}
	c.applyDefaults(&md)
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// applyDefaults fills every unset value. md tells which booleans were set.
func (c *Config) applyDefaults(md *toml.MetaData) {
	set := func(key ...string) bool { return md != nil && md.IsDefined(key...) }
	s := &c.Server
	if s.Hostname == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			s.Hostname = h
		} else {
			s.Hostname = "localhost"
		}
	}
	if s.DataDir == "" {
		s.DataDir = "./mmsrelay-data"
	}
	if s.LogLevel == "" {
		s.LogLevel = "info"
	}
	m := &c.SMTP
	if !set("smtp", "listen") && m.Listen == nil {
		m.Listen = []string{"127.0.0.1:2525"}
	}
	// An empty list and no list mean the same.
	for _, l := range []*[]string{&m.SubmissionListen, &m.AllowedSenders, &c.MMS.ShortCodes} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if len(c.Profiles) == 0 {
		c.Profiles = nil
	}
	if len(c.Peers) == 0 {
		c.Peers = nil
	}
	if len(c.Users) == 0 {
		c.Users = nil
	}
	if len(c.Quotas) == 0 {
		c.Quotas = nil
	}
	if len(c.IMAP) == 0 {
		c.IMAP = nil
	}
	if m.TrustedNetworks == nil {
		m.TrustedNetworks = []string{"127.0.0.0/8", "::1/128"}
	}
	if m.MaxMessageBytes == 0 {
		m.MaxMessageBytes = 25 << 20
	}
	if m.MaxRecipients == 0 {
		m.MaxRecipients = 50
	}
	if m.MaxConnectionsPerIP == 0 {
		m.MaxConnectionsPerIP = 20
	}
	if m.MessagesPerSenderHour == 0 {
		m.MessagesPerSenderHour = 1000
	}
	if m.ReadTimeout.Duration == 0 {
		m.ReadTimeout.Duration = 5 * time.Minute
	}
	if m.MinFreeDiskBytes == 0 {
		m.MinFreeDiskBytes = 64 << 20
	}
	x := &c.MMS
	if x.Domains == nil {
		x.Domains = []string{"mms.localhost"}
	}
	if x.DefaultRegion == "" {
		x.DefaultRegion = "US"
	}
	if x.GroupMode == "" {
		x.GroupMode = "group"
	}
	if x.SubjectMaxChars == 0 {
		x.SubjectMaxChars = 40
	}
	if !set("mms", "strip_quotes") {
		x.StripQuotes = true
	}
	if x.Expiry.Duration == 0 {
		x.Expiry.Duration = 7 * 24 * time.Hour
	}
	if x.MessageClass == "" {
		x.MessageClass = "personal"
	}
	if x.OriginatorSystem == "" && len(x.Domains) > 0 {
		x.OriginatorSystem = "system@" + x.Domains[0]
	}
	if c.Admin.Listen == "" {
		c.Admin.Listen = "127.0.0.1:8025"
	}
	q := &c.Queue
	if q.Lifetime.Duration == 0 {
		q.Lifetime.Duration = 48 * time.Hour
	}
	if q.RetryMin.Duration == 0 {
		q.RetryMin.Duration = time.Minute
	}
	if q.RetryMax.Duration == 0 {
		q.RetryMax.Duration = time.Hour
	}
	if q.Workers == 0 {
		q.Workers = 4
	}
	if q.ResponseTTL.Duration == 0 {
		q.ResponseTTL.Duration = time.Hour
	}
	if c.Records.KeepBodies.Duration == 0 {
		c.Records.KeepBodies.Duration = 7 * 24 * time.Hour
	}
	if c.Records.KeepRecords.Duration == 0 {
		c.Records.KeepRecords.Duration = 180 * 24 * time.Hour
	}
	if c.Reply.From == "" {
		c.Reply.From = "direct"
		if c.Reply.Domain != "" {
			c.Reply.From = "masked"
		}
	}
	if c.Reply.TokenTTL.Duration == 0 {
		c.Reply.TokenTTL.Duration = 90 * 24 * time.Hour
	}
	if c.Reply.WrongNumber == "" {
		c.Reply.WrongNumber = "refuse"
	}
	if c.Reply.Unmapped == "" {
		c.Reply.Unmapped = "refuse"
	}
	if c.Reply.OptOutScope == "" {
		c.Reply.OptOutScope = "sender"
	}
	if c.Media.FFmpeg == "" {
		c.Media.FFmpeg = "ffmpeg"
	}
	if c.Media.FFprobe == "" {
		c.Media.FFprobe = "ffprobe"
	}
	if c.Media.Timeout.Duration == 0 {
		c.Media.Timeout.Duration = time.Minute
	}
	if len(c.Routes) == 0 {
		c.Routes = []Route{{Prefix: "+", Type: "outbox"}}
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.Profile == "" {
			r.Profile = "default"
		}
		if t, ok := routeTypeNamed(r.Type); ok {
			if t.smtp && r.TLS == "" {
				r.TLS = "none"
			}
			if t.defaults != nil {
				t.defaults(c, r)
			}
		}
	}
}

// routeType is what the configuration knows of one type of [[route]]: the
// keys it needs and how it fills unset ones. relay/deliver builds the
// route itself (deliver.Build); a test there checks that RouteTypes and
// its registry name the same types.
type routeType struct {
	name string
	// required are the keys a route of this type must set, checked in order.
	required []routeKey
	// smtp: the route talks SMTP to a peer, so tls ("none" by default,
	// else "starttls" or "tls") applies to it.
	smtp bool
	// defaults, if not nil, fills the unset keys that have a default.
	defaults func(c *Config, r *Route)
	// planned: the type is known but not available yet.
	planned bool
}

// routeKey is a key a route type requires.
type routeKey struct {
	name     string // the TOML key
	value    func(r *Route) string
	hint     string // what the value is, said when it is missing
	hostPort bool   // the value must be host:port
}

var (
	keyHost = func(hint string) routeKey {
		return routeKey{name: "host", value: func(r *Route) string { return r.Host }, hint: hint, hostPort: true}
	}
	keyURL = routeKey{name: "url", value: func(r *Route) string { return r.URL }}
)

// routeTypes are the route types, one entry each. A new type adds its
// entry here and its builder in relay/deliver/registry.go.
var routeTypes = []routeType{
	{
		name:     "outbox",
		required: []routeKey{{name: "dir", value: func(r *Route) string { return r.Dir }}},
		defaults: func(c *Config, r *Route) {
			if r.Dir == "" {
				r.Dir = c.Server.DataDir + "/outbox"
			}
		},
	},
	{
		name: "mm4",
		smtp: true,
		required: []routeKey{keyHost("the peer MMSC's host:port"),
			{name: "domain", value: func(r *Route) string { return r.Domain }, hint: "the peer's MMS domain"}},
	},
	{
		name: "mm3",
		smtp: true,
		required: []routeKey{keyHost("the gateway's host:port"),
			{name: "gateway_domain", value: func(r *Route) string { return r.GatewayDomain }}},
	},
	{name: "mm1", required: []routeKey{keyURL}, planned: true},
	{name: "mm7", required: []routeKey{keyURL}, planned: true},
}

// RouteTypes returns the route types a configuration may use, in the order
// the documentation lists them. Types that are planned but not available
// are not among them.
func RouteTypes() []string {
	var names []string
	for _, t := range routeTypes {
		if !t.planned {
			names = append(names, t.name)
		}
	}
	return names
}

// routeTypeNamed returns the entry of the route type name, planned or not.
func routeTypeNamed(name string) (routeType, bool) {
	for _, t := range routeTypes {
		if t.name == name {
			return t, true
		}
	}
	return routeType{}, false
}

// orList writes names as "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

var builtinProfiles = map[string]bool{"default": true, "basic": true, "large": true}

func (c *Config) validate() []error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, a...)))
	}
	checkAddrs := func(key string, list []string) {
		for _, a := range list {
			if _, _, err := net.SplitHostPort(a); err != nil {
				bad(key, "%q is not host:port", a)
			}
		}
	}
	checkAddrs("smtp.listen", c.SMTP.Listen)
	checkAddrs("smtp.submission_listen", c.SMTP.SubmissionListen)
	checkAddrs("admin.listen", []string{c.Admin.Listen})
	switch c.Outbound.TLS {
	case "", "none", "starttls", "tls":
	default:
		bad("outbound.tls", "%q: use none, starttls or tls", c.Outbound.TLS)
	}
	if len(c.Outbound.IMAPDomains) > 0 {
		if c.Outbound.IMAPHost == "" {
			bad("outbound.imap_host", "missing: imap_domains are delivered by IMAP APPEND")
		} else {
			checkAddrs("outbound.imap_host", []string{c.Outbound.IMAPHost})
		}
		switch c.Outbound.IMAPTLS {
		case "", "tls", "starttls", "none":
		default:
			bad("outbound.imap_tls", "%q: use tls, starttls or none", c.Outbound.IMAPTLS)
		}
	}
	if len(c.Outbound.IMAPDomains) == 0 {
		c.Outbound.IMAPDomains = nil
	}
	if c.Outbound.Username != "" && c.Outbound.Smarthost == "" {
		bad("outbound.username", "goes with outbound.smarthost")
	}
	if c.Outbound.Smarthost != "" {
		checkAddrs("outbound.smarthost", []string{c.Outbound.Smarthost})
	}
	c.SMTP.TrustedNetworkPrefixes = nil
	for _, n := range c.SMTP.TrustedNetworks {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			bad("smtp.trusted_networks", "%q is not a CIDR network", n)
			continue
		}
		c.SMTP.TrustedNetworkPrefixes = append(c.SMTP.TrustedNetworkPrefixes, p.Masked())
	}
	if (c.SMTP.TLSCert == "") != (c.SMTP.TLSKey == "") {
		bad("smtp.tls_cert", "tls_cert and tls_key go together")
	}
	if c.SMTP.TLSCert != "" {
		for key, f := range map[string]string{"smtp.tls_cert": c.SMTP.TLSCert, "smtp.tls_key": c.SMTP.TLSKey} {
			if _, err := os.Stat(f); err != nil {
				bad(key, "%v", err)
			}
		}
	}
	if len(c.SMTP.SubmissionListen) > 0 && c.SMTP.TLSCert == "" {
		bad("smtp.submission_listen", "submission needs TLS: set smtp.tls_cert and smtp.tls_key")
	}
	if c.SMTP.MaxMessageBytes < 1024 {
		bad("smtp.max_message_bytes", "%d is too small", c.SMTP.MaxMessageBytes)
	}
	if c.SMTP.MaxRecipients < 1 {
		bad("smtp.max_recipients", "must be at least 1")
	}
	if len(c.MMS.Domains) == 0 {
		bad("mms.domains", "at least one MMS domain is needed")
	}
	for _, d := range c.MMS.Domains {
		if d == "" || strings.ContainsAny(d, "@ /") {
			bad("mms.domains", "%q is not a domain", d)
		}
	}
	if len(c.MMS.DefaultRegion) != 2 {
		bad("mms.default_region", "%q is not a two-letter region code", c.MMS.DefaultRegion)
	}
	if c.MMS.GroupMode != "group" && c.MMS.GroupMode != "individual" {
		bad("mms.group_mode", "%q: use \"group\" or \"individual\"", c.MMS.GroupMode)
	}
	switch strings.ToLower(c.MMS.MessageClass) {
	case "personal", "advertisement", "informational", "auto":
	default:
		bad("mms.message_class", "%q: use personal, advertisement, informational or auto", c.MMS.MessageClass)
	}
	if !isLoopback(c.Admin.Listen) && c.Admin.Token == "" {
		bad("admin.token", "the admin listener %s is not on loopback: set a token", c.Admin.Listen)
	}
	if c.Queue.RetryMin.Duration > c.Queue.RetryMax.Duration {
		bad("queue.retry_min", "is more than queue.retry_max")
	}
	if c.Queue.Workers < 1 || c.Queue.Workers > 256 {
		bad("queue.workers", "%d: use 1 to 256", c.Queue.Workers)
	}
	if c.Reply.From != "masked" && c.Reply.From != "direct" {
		bad("reply.from", "%q: use \"masked\" or \"direct\"", c.Reply.From)
	}
	if c.Reply.From == "masked" && c.Reply.Domain == "" {
		bad("reply.from", "masked needs reply.domain")
	}
	for d, mode := range c.Reply.FromByDomain {
		if mode != "masked" && mode != "direct" {
			bad("reply.from_by_domain", "%s = %q: use \"masked\" or \"direct\"", d, mode)
		}
		if mode == "masked" && c.Reply.Domain == "" {
			bad("reply.from_by_domain", "%s = \"masked\" needs reply.domain", d)
		}
	}
	if c.Reply.WrongNumber != "refuse" && c.Reply.WrongNumber != "quarantine" {
		bad("reply.wrong_number", "%q: use \"refuse\" or \"quarantine\"", c.Reply.WrongNumber)
	}
	switch c.Reply.Unmapped {
	case "refuse":
	case "catchall":
		if c.Reply.CatchAll == "" || !strings.Contains(c.Reply.CatchAll, "@") {
			bad("reply.catchall", "unmapped = \"catchall\" needs a catchall mailbox address")
		}
	default:
		bad("reply.unmapped", "%q: use \"refuse\" or \"catchall\"", c.Reply.Unmapped)
	}
	if c.Reply.OptOutScope != "sender" && c.Reply.OptOutScope != "all" {
		bad("reply.optout_scope", "%q: use \"sender\" or \"all\"", c.Reply.OptOutScope)
	}
	for i, m := range c.IMAP {
		key := fmt.Sprintf("imap[%d]", i)
		if m.Host == "" {
			bad(key+".host", "missing")
		} else {
			checkAddrs(key+".host", []string{m.Host})
		}
		switch m.TLS {
		case "", "tls", "starttls", "none":
		default:
			bad(key+".tls", "%q: use tls, starttls or none", m.TLS)
		}
		if m.Username == "" {
			bad(key+".username", "missing")
		}
		if c.Reply.Domain == "" {
			bad(key, "polling for replies needs reply.domain")
		}
	}
	if c.Reply.CarriersFile != "" {
		if _, err := os.Stat(c.Reply.CarriersFile); err != nil {
			bad("reply.carriers_file", "%v", err)
		}
	}
	if c.DKIM.KeyFile != "" {
		if c.DKIM.Domain == "" || c.DKIM.Selector == "" {
			bad("dkim.key_file", "needs dkim.domain and dkim.selector")
		}
		if _, err := os.Stat(c.DKIM.KeyFile); err != nil {
			bad("dkim.key_file", "%v", err)
		}
	}
	if c.Media.Transcode {
		for key, prog := range map[string]string{"media.ffmpeg": c.Media.FFmpeg, "media.ffprobe": c.Media.FFprobe} {
			if _, err := exec.LookPath(prog); err != nil {
				bad(key, "%q not found (transcode = true needs it: on Debian, apt-get install ffmpeg)", prog)
			}
		}
	}
	profiles := map[string]bool{}
	for k := range builtinProfiles {
		profiles[k] = true
	}
	for i, p := range c.Profiles {
		key := fmt.Sprintf("profile[%d]", i)
		if p.Name == "" {
			bad(key+".name", "missing")
		}
		if p.MaxMessageBytes < 0 || p.MaxWidth < 0 || p.MaxHeight < 0 || p.MaxTextBytes < 0 || p.MaxPixels < 0 {
			bad(key, "limits cannot be negative")
		}
		profiles[p.Name] = true
	}
	prefixes := map[string]bool{}
	for i, r := range c.Routes {
		key := fmt.Sprintf("route[%d]", i)
		if r.Prefix == "" || (r.Prefix != "+" && !validPrefix(r.Prefix)) {
			bad(key+".prefix", "%q: an E.164 prefix such as \"+1\", or \"+\" for all", r.Prefix)
		}
		if prefixes[r.Prefix] {
			bad(key+".prefix", "%q is routed twice", r.Prefix)
		}
		prefixes[r.Prefix] = true
		if !profiles[r.Profile] {
			bad(key+".profile", "no profile named %q", r.Profile)
		}
		t, ok := routeTypeNamed(r.Type)
		if !ok {
			bad(key+".type", "%q: use %s", r.Type, orList(RouteTypes()))
		}
		for _, k := range t.required {
			switch v := k.value(&r); {
			case v == "" && k.hint != "":
				bad(key+"."+k.name, "missing: %s", k.hint)
			case v == "":
				bad(key+"."+k.name, "missing")
			case k.hostPort:
				checkAddrs(key+"."+k.name, []string{v})
			}
		}
		if t.planned {
			bad(key+".type", "%q is not available yet", r.Type)
		}
		if t.smtp {
			switch r.TLS {
			case "none", "starttls", "tls":
			default:
				bad(key+".tls", "%q: use none, starttls or tls", r.TLS)
			}
		}
		if r.MaxRate < 0 || r.MaxConnections < 0 {
			bad(key, "max_rate and max_connections cannot be negative")
		}
	}
	for i := range c.Peers {
		p := &c.Peers[i]
		key := fmt.Sprintf("mm4_peer[%d]", i)
		if p.Name == "" {
			bad(key+".name", "missing")
		}
		if len(p.Networks)+len(p.TLSNames)+len(p.Users) == 0 {
			bad(key, "give networks, tls_names or users to recognise the peer by")
		}
		p.Prefixes = nil
		for _, n := range p.Networks {
			pr, err := netip.ParsePrefix(n)
			if err != nil {
				bad(key+".networks", "%q is not a CIDR network", n)
				continue
			}
			p.Prefixes = append(p.Prefixes, pr.Masked())
		}
	}
	for i, u := range c.Users {
		key := fmt.Sprintf("user[%d]", i)
		if u.Name == "" {
			bad(key+".name", "missing")
		}
		if !strings.HasPrefix(u.PasswordHash, "$2") {
			bad(key+".password_hash", "must be a bcrypt hash (mmsrelay hash-password makes one); plain passwords are not kept")
		}
	}
	for i, q := range c.Quotas {
		if q.Sender == "" {
			bad(fmt.Sprintf("quota[%d].sender", i), "missing")
		}
	}
	return errs
}

func validPrefix(p string) bool {
	if !strings.HasPrefix(p, "+") || len(p) < 2 || len(p) > 16 {
		return false
	}
	for _, c := range p[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// RouteFor returns the route whose prefix is the longest that number (E.164,
// "+15551234567") starts with.
func (c *Config) RouteFor(number string) (Route, bool) {
	best, found := -1, false
	var r Route
	for _, x := range c.Routes {
		if strings.HasPrefix(number, x.Prefix) && len(x.Prefix) > best {
			best, r, found = len(x.Prefix), x, true
		}
	}
	return r, found
}

// Trusted reports whether addr is in a trusted network.
func (s *SMTP) Trusted(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range s.TrustedNetworkPrefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
