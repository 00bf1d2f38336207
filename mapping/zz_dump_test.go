package mapping

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
)

func TestZZDump(t *testing.T) {
	if os.Getenv("DUMP") == "" {
		t.Skip()
	}
	for _, f := range testcorpus.Files(t, "eml/mms2r") {
		raw, _ := os.ReadFile(f)
		m, err := MMSFromEmail(raw)
		if err != nil {
			fmt.Println("ERR", f, err)
			continue
		}
		m.Normalize(nil)
		fmt.Printf("===== %s [%s] subj=%q\n", filepath.Base(f), DefaultCarrierRules().Carrier(m.From), m.Subject)
		for _, p := range m.Parts {
			if p.ContentType.Type == "text/plain" {
				fmt.Printf("  TEXT %q\n", string(p.Body))
			} else {
				fmt.Printf("  MEDIA %s %q %d\n", p.ContentType.Type, p.Name(), len(p.Body))
			}
		}
	}
}
