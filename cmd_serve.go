package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mmsrelay/mmsrelay/adapt"
	"github.com/mmsrelay/mmsrelay/config"
	"github.com/mmsrelay/mmsrelay/mail/dkim"
	"github.com/mmsrelay/mmsrelay/mapping"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
	"github.com/mmsrelay/mmsrelay/mapping/pdu/pdujson"
	"github.com/mmsrelay/mmsrelay/relay"
	"github.com/mmsrelay/mmsrelay/relay/deliver"
	"github.com/mmsrelay/mmsrelay/relay/imappoll"
	"github.com/mmsrelay/mmsrelay/relay/replies"
	"github.com/mmsrelay/mmsrelay/relay/store"
)

const serveHelp = `Serve runs the relay: SMTP listeners take mail for the MMS domains into
the durable store, workers convert each message and deliver it on its
route (outbox folder, MM4 or MM3), and the admin listener serves
/metrics, /healthz and the queue API.

The configuration is -config FILE, else ./config.toml when it exists, else
the built-in defaults (SMTP on 127.0.0.1:2525 for mms.localhost, every
number to ./mmsrelay-data/outbox). SIGHUP reloads the TLS certificate;
SIGINT and SIGTERM stop taking mail and let work in flight finish.
`

// loadConfig reads -config, ./config.toml or the defaults.
func loadConfig(path string) (*config.Config, error) {
	if path != "" {
		return config.Load(path)
	}
	if _, err := os.Stat("config.toml"); err == nil {
		return config.Load("config.toml")
	}
	return config.Default(), nil
}

func runServe(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "[-config FILE]", serveHelp)
	cfgPath := fs.String("config", "", "configuration file (default ./config.toml, else built-in defaults)")
	if st, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return st
	}
	if fs.NArg() > 0 {
		return usageError(fs, stderr, "unexpected argument %q", fs.Arg(0))
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return fail(stderr, "serve", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, stderr, nil); err != nil {
		return fail(stderr, "serve", err)
	}
	return exitOK
}

// serve runs the relay until ctx is done. ready, if not nil, is called
// with the bound SMTP and admin addresses once the relay listens.
func serve(ctx context.Context, cfg *config.Config, logw io.Writer, ready func(smtp []string, admin string)) error {
	level := slog.LevelInfo
	level.UnmarshalText([]byte(cfg.Server.LogLevel))
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: level}))
	// Compiling the HEIC decoder takes a second of CPU (far more on a busy
	// machine): do it beside the start, not before the listeners, so a
	// restarted relay answers SMTP at once. FitImage waits for it if a
	// HEIC image comes first.
	go adapt.Init()

	certs := &certStore{cert: cfg.SMTP.TLSCert, key: cfg.SMTP.TLSKey}
	if err := certs.load(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Server.DataDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	// Listen first, so a restarted relay takes mail again at once;
	// recovery of the store follows.
	var listeners []net.Listener
	var subs []net.Listener
	closeAll := func() {
		for _, l := range append(listeners, subs...) {
			l.Close()
		}
	}
	for _, a := range cfg.SMTP.Listen {
		l, err := net.Listen("tcp", a)
		if err != nil {
			closeAll()
			return fmt.Errorf("smtp.listen: %w", err)
		}
		listeners = append(listeners, l)
	}
	for _, a := range cfg.SMTP.SubmissionListen {
		l, err := net.Listen("tcp", a)
		if err != nil {
			closeAll()
			return fmt.Errorf("smtp.submission_listen: %w", err)
		}
		subs = append(subs, l)
	}
	adminL, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		closeAll()
		return fmt.Errorf("admin.listen: %w", err)
	}

	st, err := openStore(cfg, log)
	if err != nil {
		closeAll()
		adminL.Close()
		return err
	}
	defer st.Close()
	opts, err := relayOptions(cfg, st, log, certs)
	if err != nil {
		closeAll()
		adminL.Close()
		return err
	}
	r, err := relay.New(opts)
	if err != nil {
		closeAll()
		adminL.Close()
		return err
	}
	var wg sync.WaitGroup
	var addrs []string
	for _, l := range listeners {
		addrs = append(addrs, l.Addr().String())
		wg.Add(1)
		go func(l net.Listener) {
			defer wg.Done()
			if err := r.Serve(l, false); err != nil {
				log.Error("smtp listener", "addr", l.Addr().String(), "err", err)
			}
		}(l)
	}
	for _, l := range subs {
		wg.Add(1)
		go func(l net.Listener) {
			defer wg.Done()
			if err := r.Serve(l, true); err != nil {
				log.Error("submission listener", "addr", l.Addr().String(), "err", err)
			}
		}(l)
	}
	adminSrv := &http.Server{Handler: r.AdminHandler(cfg.Admin.Token), ReadHeaderTimeout: 10 * time.Second}
	go adminSrv.Serve(adminL)
	workCtx, stopWork := context.WithCancel(context.Background())
	workDone := make(chan struct{})
	go func() { r.Run(workCtx); close(workDone) }()
	if len(cfg.IMAP) > 0 {
		poller, err := imapPoller(cfg, st.KV, log, r)
		if err != nil {
			log.Error("imap: not polling", "err", err)
		} else {
			go poller.Run(workCtx)
		}
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	log.Info("mmsrelay listening", "smtp", strings.Join(addrs, ","), "admin", adminL.Addr().String(),
		"domains", strings.Join(cfg.MMS.Domains, ","), "data_dir", cfg.Server.DataDir)
	if ready != nil {
		ready(addrs, adminL.Addr().String())
	}
	for {
		select {
		case <-hup:
			reload(cfg, st, log, certs, r)
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("shutting down: no new mail; finishing work in flight")
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.Shutdown(shutCtx)
	adminSrv.Shutdown(shutCtx)
	wg.Wait()
	stopWork()
	<-workDone
	return nil
}

// reload applies a changed configuration on SIGHUP: the TLS certificate,
// and routes, limits, domains, peers, users and conversion settings,
// without dropping a session. Listeners and the data directory need a
// restart. A configuration that does not load leaves everything as it was.
func reload(cur *config.Config, st *store.Backend, log *slog.Logger, certs *certStore, r *relay.Relay) {
	next, err := loadConfig(cur.Source)
	if err != nil {
		log.Error("reload: the configuration has errors; keeping the running one", "err", err)
		return
	}
	if strings.Join(next.SMTP.Listen, ",") != strings.Join(cur.SMTP.Listen, ",") ||
		strings.Join(next.SMTP.SubmissionListen, ",") != strings.Join(cur.SMTP.SubmissionListen, ",") ||
		next.Server.DataDir != cur.Server.DataDir || next.Admin.Listen != cur.Admin.Listen {
		log.Warn("reload: listeners, admin.listen and data_dir change only on restart")
	}
	certs.cert, certs.key = next.SMTP.TLSCert, next.SMTP.TLSKey
	if err := certs.load(); err != nil {
		log.Error("reload: TLS certificate; keeping the running configuration", "err", err)
		return
	}
	opts, err := relayOptions(next, st, log, certs)
	if err == nil {
		err = r.Reload(opts)
	}
	if err != nil {
		log.Error("reload: keeping the running configuration", "err", err)
		return
	}
	log.Info("reloaded the configuration", "source", next.Source, "routes", len(next.Routes))
}

// certStore holds the current TLS certificate and reloads it on SIGHUP.
type certStore struct {
	cert, key string
	cur       atomic.Pointer[tls.Config]
}

func (c *certStore) load() error {
	if c.cert == "" {
		return nil
	}
	pair, err := tls.LoadX509KeyPair(c.cert, c.key)
	if err != nil {
		return fmt.Errorf("smtp.tls_cert: %w", err)
	}
	c.cur.Store(&tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	return nil
}

func (c *certStore) get() *tls.Config { return c.cur.Load() }

// relayOptions turns the configuration into the relay's options.
func relayOptions(cfg *config.Config, st *store.Backend, log *slog.Logger, certs *certStore) (relay.Options, error) {
	o := relay.Options{
		Hostname: cfg.Server.Hostname, Logger: log,
		Store:      relay.Stores{Queue: st.Queue, KV: st.KV, Admin: st.Admin, Space: st.Space},
		Postmaster: cfg.SMTP.Postmaster, OriginatorSystem: cfg.MMS.OriginatorSystem,
		SMTP: relay.SMTPOptions{
			MaxMessageBytes: cfg.SMTP.MaxMessageBytes, MaxRecipients: cfg.SMTP.MaxRecipients,
			Trusted: cfg.SMTP.Trusted, MaxConnsPerIP: cfg.SMTP.MaxConnectionsPerIP,
			SenderPerHour: cfg.SMTP.MessagesPerSenderHour, AllowedSenders: cfg.SMTP.AllowedSenders,
			ReadTimeout: cfg.SMTP.ReadTimeout.Duration,
		},
		Conversion: relay.ConversionOptions{
			Recipients: mapping.RecipientOptions{Domains: cfg.MMS.Domains, NumberOptions: mapping.NumberOptions{
				DefaultRegion: cfg.MMS.DefaultRegion, ShortCodes: cfg.MMS.ShortCodes, StrictValidity: cfg.MMS.StrictNumbers}},
			GroupMode: cfg.MMS.GroupMode, SubjectMaxChars: cfg.MMS.SubjectMaxChars, Expiry: cfg.MMS.Expiry.Duration,
			DeliveryReport: cfg.MMS.DeliveryReport, MessageClass: cfg.MMS.MessageClass, KeepHistory: !cfg.MMS.StripQuotes,
		},
		Queue: relay.QueueOptions{
			Lifetime: cfg.Queue.Lifetime.Duration, RetryMin: cfg.Queue.RetryMin.Duration, RetryMax: cfg.Queue.RetryMax.Duration,
			Workers: cfg.Queue.Workers, ResponseTimeout: cfg.Queue.ResponseTTL.Duration,
			KeepBodies: cfg.Records.KeepBodies.Duration, KeepRecords: cfg.Records.KeepRecords.Duration,
		},
	}
	mailer := &deliver.Mailer{HeloName: cfg.Server.Hostname, RequireTLS: cfg.Outbound.RequireTLS}
	if cfg.Outbound.Smarthost != "" {
		mailer.Smarthost = &deliver.SMTPPeer{Addr: cfg.Outbound.Smarthost, HeloName: cfg.Server.Hostname,
			TLS: cfg.Outbound.TLS, Username: cfg.Outbound.Username, Password: cfg.Outbound.Password}
	}
	o.Mailer = mailer
	if len(cfg.Outbound.IMAPDomains) > 0 {
		o.Mailer = &deliver.Split{Mailer: mailer, IMAP: &deliver.IMAPAppender{Addr: cfg.Outbound.IMAPHost,
			TLS: cfg.Outbound.IMAPTLS, Login: cfg.Outbound.IMAPLogin, Password: cfg.Outbound.IMAPPassword,
			Folder: cfg.Outbound.IMAPFolder, Domains: cfg.Outbound.IMAPDomains}}
	}
	if cfg.SMTP.TLSCert != "" {
		o.SMTP.TLSConfig = certs.get
	}
	ro, err := replyOptions(cfg, st.KV)
	if err != nil {
		return o, err
	}
	o.Replies = ro
	if len(cfg.Users) > 0 {
		o.SMTP.Users = map[string]string{}
		for _, u := range cfg.Users {
			o.SMTP.Users[u.Name] = u.PasswordHash
		}
	}
	for _, q := range cfg.Quotas {
		o.SMTP.Quotas = append(o.SMTP.Quotas, relay.Quota{Sender: q.Sender, PerHour: q.PerHour, PerDay: q.PerDay})
	}
	for _, p := range cfg.Peers {
		o.Peers = append(o.Peers, relay.Peer{Name: p.Name, Networks: p.Prefixes, TLSNames: p.TLSNames, Users: p.Users})
	}
	tc := newTranscoder(cfg) // media: one for all routes, nil when off
	env := deliver.Env{Hostname: cfg.Server.Hostname, OriginatorSystem: cfg.MMS.OriginatorSystem,
		LocalDomain: cfg.MMS.Domains[0], Describe: describePDU}
	for _, rc := range cfg.Routes {
		prof, ok := lookupProfile(cfg, rc.Profile)
		if !ok {
			return o, fmt.Errorf("route %s: no profile %q", rc.Prefix, rc.Profile)
		}
		prof.Transcoder = tc
		d, err := deliver.Build(rc, env)
		if err != nil {
			return o, fmt.Errorf("route %s: %w", rc.Prefix, err)
		}
		rt := relay.Route{Name: rc.Type + ":" + rc.Prefix, Prefix: rc.Prefix, Profile: prof, Via: d}
		o.Routes = append(o.Routes, rt)
	}
	return o, nil
}

// imapPoller polls the configured mailboxes for handset replies, handing
// each to the relay's queue before it leaves the mailbox.
func imapPoller(cfg *config.Config, st store.KV, log *slog.Logger, r *relay.Relay) (*imappoll.Poller, error) {
	var boxes []imappoll.Mailbox
	for _, m := range cfg.IMAP {
		boxes = append(boxes, imappoll.Mailbox{Name: m.Name, Addr: m.Host, TLS: m.TLS, Username: m.Username,
			Password: m.Password, Folder: m.Folder, Processed: m.Processed, Interval: m.Interval.Duration})
	}
	return imappoll.New(imappoll.Options{Mailboxes: boxes, Handler: r.AcceptReply, State: st, Logger: log})
}

// replyOptions sets up the way back when a reply domain is configured.
func replyOptions(cfg *config.Config, st store.KV) (*relay.ReplyOptions, error) {
	if cfg.Reply.Domain == "" {
		return nil, nil
	}
	book, err := replies.New(st, replies.Options{ReplyDomain: cfg.Reply.Domain, From: cfg.Reply.From, DomainFrom: cfg.Reply.FromByDomain,
		MMSDomain: cfg.MMS.Domains[0], TokenTTL: cfg.Reply.TokenTTL.Duration, WrongNumber: cfg.Reply.WrongNumber,
		Unmapped: cfg.Reply.Unmapped, CatchAll: cfg.Reply.CatchAll, OptOutScope: cfg.Reply.OptOutScope,
		HelpText: cfg.Reply.HelpText, StopText: cfg.Reply.StopText, StartText: cfg.Reply.StartText})
	if err != nil {
		return nil, fmt.Errorf("reply: %w", err)
	}
	ro := &relay.ReplyOptions{Book: book, Domain: cfg.Reply.Domain, Region: cfg.MMS.DefaultRegion,
		Carriers: mapping.DefaultCarrierRules()}
	if cfg.Reply.CarriersFile != "" {
		extra, err := os.ReadFile(cfg.Reply.CarriersFile)
		if err != nil {
			return nil, fmt.Errorf("reply.carriers_file: %w", err)
		}
		if ro.Carriers, err = mapping.LoadCarrierRules(extra); err != nil {
			return nil, fmt.Errorf("reply.carriers_file: %w", err)
		}
	}
	if cfg.DKIM.KeyFile != "" {
		pemBytes, err := os.ReadFile(cfg.DKIM.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("dkim.key_file: %w", err)
		}
		key, err := dkim.ParseKey(pemBytes)
		if err != nil {
			return nil, fmt.Errorf("dkim.key_file: %w", err)
		}
		ro.DKIM = &dkim.Options{Domain: cfg.DKIM.Domain, Selector: cfg.DKIM.Selector, Key: key}
	}
	return ro, nil
}

// describePDU is the outbox's description of a PDU: the JSON that
// `mmsrelay decode` prints.
func describePDU(m *pdu.Message) any { return pdujson.View(m) }
