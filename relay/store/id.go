package store

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// idAlphabet is a base32 alphabet in ASCII order (Crockford's, lower case),
// so ids sort like the times they encode. It is safe in URLs and file names.
const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// idLen is the length of a queue id: 12 bytes (8 time, 4 random) in base32
// with 5 bits per character, rounded up.
const idLen = 20

// idGen makes queue ids: 64 bits of Unix nanoseconds, strictly increasing
// within the process even if the clock steps back, then 32 random bits so
// that two processes sharing a database (later, PostgreSQL) do not collide.
type idGen struct {
	mu   sync.Mutex
	last int64
}

func (g *idGen) next(now time.Time) string {
	g.mu.Lock()
	t := now.UnixNano()
	if t <= g.last {
		t = g.last + 1
	}
	g.last = t
	g.mu.Unlock()

	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t))
	rand.Read(b[8:]) // never returns an error (crypto/rand, Go 1.24+)
	return encodeID(b)
}

// encodeID writes b as 20 base32 characters, most significant bits first.
func encodeID(b [12]byte) string {
	hi := binary.BigEndian.Uint64(b[:8])
	lo := uint64(binary.BigEndian.Uint32(b[8:])) << 32 // 96 bits: hi(64) lo(32), left-aligned
	var out [idLen]byte
	for i := range out {
		// Take 5 bits at a time from the 100-bit string hi|lo|0000.
		var v uint64
		switch shift := i * 5; {
		case shift+5 <= 64:
			v = hi >> (64 - shift - 5)
		case shift >= 64:
			v = lo >> (128 - shift - 5)
		default: // straddles hi and lo
			v = hi<<(shift+5-64) | lo>>(64-(shift+5-64))
		}
		out[i] = idAlphabet[v&31]
	}
	return string(out[:])
}

// validID reports whether id could be a queue id. It keeps ids that come
// from outside (an admin command, a URL) from naming other files.
func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z') || c == 'i' || c == 'l' || c == 'o' || c == 'u' {
			return false
		}
	}
	return true
}
