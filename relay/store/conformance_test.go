package store_test

import (
	"testing"

	"github.com/mmsrelay/mmsrelay/relay/store"
	"github.com/mmsrelay/mmsrelay/relay/store/storetest"
)

// TestConformance runs the contracts' conformance suite on the embedded
// backend, with spooled bodies above 64 KiB as configured by default.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *store.Backend {
		b, err := store.OpenBolt(t.TempDir(), store.Options{MinFree: -1})
		if err != nil {
			t.Fatal(err)
		}
		return b.Backend()
	})
}
