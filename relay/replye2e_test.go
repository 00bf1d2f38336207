package relay

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

func TestDumpCorpusTmp(t *testing.T) {
	d := testcorpus.Dir(t, "pdu")
	for _, f := range []string{"python-messaging/iPhone.mms", "mms-engine/test_mms_codec__m-retrieve_3.conf", "mms-engine/test_retrieve__Success1__m-retrieve.conf", "python-messaging/SonyEricssonT310-R201.mms", "python-messaging/NOWMMS.MMS", "python-messaging/BTMMS.MMS", "mmsd/sr-mms-mixed.mms"} {
		b, err := os.ReadFile(filepath.Join(d, f))
		if err != nil {
			t.Log(err)
			continue
		}
		m, err := pdu.Decode(b)
		if err != nil {
			t.Logf("%s: %v", f, err)
			continue
		}
		t.Logf("%s: type %v ct %+v from %v subj %q", f, m.Type, m.ContentType, m.From, m.Subject.String())
		for _, p := range m.Parts {
			txt, _ := p.Text()
			if len(txt) > 80 {
				txt = txt[:80]
			}
			t.Logf("   %+v id=%q loc=%q len=%d name=%q text=%q", p.ContentType, p.ContentID, p.ContentLocation, len(p.Body), p.Name(), txt)
		}
	}
}
