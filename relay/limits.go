package relay

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// limits counts connections per client address and messages per sender.
type limits struct {
	maxConns int

	mu      sync.Mutex
	conns   map[netip.Addr]int
	senders map[string]*window
}

// window counts events in the current hour and day.
type window struct {
	hourStart, dayStart time.Time
	hour, day           int
}

func (l *limits) setMaxConns(n int) {
	l.mu.Lock()
	l.maxConns = n
	l.mu.Unlock()
}

func newLimits(maxConns int) *limits {
	return &limits{maxConns: maxConns, conns: map[netip.Addr]int{}, senders: map[string]*window{}}
}

// wrap returns a listener that refuses a client over its connection cap:
// the connection gets "421 4.7.0" and is closed.
func (l *limits) wrap(ln net.Listener) net.Listener { return &limitListener{Listener: ln, l: l} }

type limitListener struct {
	net.Listener
	l *limits
}

func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteAddr(c)
		ll.l.mu.Lock()
		n := ll.l.conns[addr]
		over := n >= ll.l.maxConns
		if !over {
			ll.l.conns[addr] = n + 1
		}
		ll.l.mu.Unlock()
		if over {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte("421 4.7.0 Too many connections from your address, try again later\r\n"))
			c.Close()
			continue
		}
		return &countedConn{Conn: c, l: ll.l, addr: addr}, nil
	}
}

type countedConn struct {
	net.Conn
	l    *limits
	addr netip.Addr
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		if c.l.conns[c.addr]--; c.l.conns[c.addr] <= 0 {
			delete(c.l.conns, c.addr)
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

func remoteAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// allowSender counts one message for sender against perHour and perDay (0:
// no limit) and reports whether it is within them. The count is only taken
// when it is.
func (l *limits) allowSender(sender string, perHour, perDay int, now time.Time) bool {
	key := strings.ToLower(sender)
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.senders[key]
	if w == nil {
		w = &window{hourStart: now, dayStart: now}
		l.senders[key] = w
	}
	if now.Sub(w.hourStart) >= time.Hour {
		w.hourStart, w.hour = now, 0
	}
	if now.Sub(w.dayStart) >= 24*time.Hour {
		w.dayStart, w.day = now, 0
	}
	if (perHour > 0 && w.hour >= perHour) || (perDay > 0 && w.day >= perDay) {
		return false
	}
	w.hour++
	w.day++
	if len(l.senders) > 100000 {
		// Bound the memory: forget senders idle for a day.
		for k, v := range l.senders {
			if now.Sub(v.dayStart) > 24*time.Hour {
				delete(l.senders, k)
			}
		}
	}
	return true
}
