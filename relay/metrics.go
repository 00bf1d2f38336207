package relay

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
)

// Metrics holds the relay's counters and histograms and writes them in the
// Prometheus text format.
type Metrics struct {
	mu       sync.Mutex
	counters map[string]float64 // "name{labels}" → value
	hists    map[string]*histogram
	gauges   map[string]func() float64
}

var buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

type histogram struct {
	counts []uint64
	sum    float64
	n      uint64
}

func newMetrics() *Metrics {
	return &Metrics{counters: map[string]float64{}, hists: map[string]*histogram{}, gauges: map[string]func() float64{}}
}

func key(name string, labels []string) string {
	if len(labels) == 0 {
		return name
	}
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i := 0; i+1 < len(labels); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", labels[i], labels[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

// Inc adds one to the counter name with label pairs.
func (m *Metrics) Inc(name string, labels ...string) { m.Add(name, 1, labels...) }

// Add adds v to the counter name with label pairs.
func (m *Metrics) Add(name string, v float64, labels ...string) {
	m.mu.Lock()
	m.counters[key(name, labels)] += v
	m.mu.Unlock()
}

// Get returns a counter's value (for tests and the queue API).
func (m *Metrics) Get(name string, labels ...string) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counters[key(name, labels)]
}

// Observe records v (seconds) in the histogram name.
func (m *Metrics) Observe(name string, v float64, labels ...string) {
	k := key(name, labels)
	m.mu.Lock()
	h := m.hists[k]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(buckets))}
		m.hists[k] = h
	}
	for i, b := range buckets {
		if v <= b {
			h.counts[i]++
		}
	}
	h.sum += v
	h.n++
	m.mu.Unlock()
}

// Gauge registers a function read at every scrape.
func (m *Metrics) Gauge(name string, f func() float64) {
	m.mu.Lock()
	m.gauges[name] = f
	m.mu.Unlock()
}

// WritePrometheus writes every metric in the text exposition format.
func (m *Metrics) WritePrometheus(w io.Writer) {
	m.mu.Lock()
	keys := make([]string, 0, len(m.counters))
	for k := range m.counters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	typed := map[string]bool{}
	for _, k := range keys {
		name := k
		if i := strings.IndexByte(k, '{'); i >= 0 {
			name = k[:i]
		}
		if !typed[name] {
			fmt.Fprintf(w, "# TYPE %s counter\n", name)
			typed[name] = true
		}
		fmt.Fprintf(w, "%s %g\n", k, m.counters[k])
	}
	hk := make([]string, 0, len(m.hists))
	for k := range m.hists {
		hk = append(hk, k)
	}
	sort.Strings(hk)
	for _, k := range hk {
		h := m.hists[k]
		name, labels := k, ""
		if i := strings.IndexByte(k, '{'); i >= 0 {
			name, labels = k[:i], k[i+1:len(k)-1]+","
		}
		if !typed[name] {
			fmt.Fprintf(w, "# TYPE %s histogram\n", name)
			typed[name] = true
		}
		for i, b := range buckets {
			fmt.Fprintf(w, "%s_bucket{%sle=\"%g\"} %d\n", name, labels, b, h.counts[i])
		}
		fmt.Fprintf(w, "%s_bucket{%sle=\"+Inf\"} %d\n", name, labels, h.n)
		trim := strings.TrimSuffix(labels, ",")
		if trim != "" {
			trim = "{" + trim + "}"
		}
		fmt.Fprintf(w, "%s_sum%s %g\n%s_count%s %d\n", name, trim, h.sum, name, trim, h.n)
	}
	gk := make([]string, 0, len(m.gauges))
	for k := range m.gauges {
		gk = append(gk, k)
	}
	sort.Strings(gk)
	gauges := m.gauges
	m.mu.Unlock()
	for _, k := range gk {
		v := gauges[k]()
		if math.IsNaN(v) {
			continue
		}
		fmt.Fprintf(w, "# TYPE %s gauge\n%s %g\n", k, k, v)
	}
}
