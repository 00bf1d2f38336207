package mapping

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmsrelay/mmsrelay/internal/testcorpus"
	"github.com/mmsrelay/mmsrelay/mapping/pdu"
)

// mm3Case is what one carrier mail of the mms2r corpus must give: the
// person's text (exact, after the round trip through ToEmail and
// ParseEmail) and media ("type name", in order). note says why a mail
// gives nothing, or what was judged.
type mm3Case struct {
	file  string
	text  string
	media []string
	note  string
}

var mm3Cases = []mm3Case{
	{"1nbox-2images-01.mail", "testing123456789012", []string{"image/jpeg 003.jpg"}, ""},
	{"1nbox-2images-02.mail", "", []string{"image/jpeg showpicture.jpeg"}, ""},
	{"1nbox-2images-03.mail", "", []string{"image/jpeg Copy-of-test1.jpg"}, ""},
	{"3ireland-mms-01.mail", "", []string{"image/jpeg Image013.jpg"}, ""},
	{"alltel-image-01.mail", "", []string{"image/jpeg eastern-sky.jpg"}, "the inline copy and the attachment of one photo: kept once"},
	{"alltel-mms-01.mail", "", []string{"image/jpeg 02-19-08_1709.jpg", "image/jpeg 02-19-08_1710.jpg"}, "two photos with different names (scrubbed to the same bytes in the corpus): both kept"},
	{"apple-double-image-01.mail", "", []string{"image/jpeg DSCN1715.jpg"}, ""},
	{"att-blackberry-02.mail", "Testing memorymail from my blackberry and at&t.", []string{"image/jpeg IMG00367.jpg"}, ""},
	{"att-blackberry.mail", "Hello world", []string{"image/jpeg BC-WAKE.jpg"}, ""},
	{"att-image-02.mail", "", []string{"image/jpeg Photo_12.jpg"}, ""},
	{"att-iphone-01.mail", "", []string{"image/jpeg photo.jpg"}, ""},
	{"att-iphone-02.mail", "", []string{"image/jpeg photo.jpg"}, ""},
	{"bell-canada-image-01.mail", "", []string{"image/jpeg image.jpg"}, "unnamed parts: the JPEG is the photo, the GIFs Bell's page"},
	{"cincinnati-bell-image-01.mail", "Wow! A facinating caption for the image.", []string{"image/jpeg test-file.jpg"}, ""},
	{"cingularme-text-01.mail", "hello world", []string(nil), ""},
	{"dobson-image-01.mail", "Body", []string{"image/jpeg 04-18-07_1723.jpg"}, ""},
	{"generic.mail", "Patches item #22951, was opened at 2008-11-23 14:47\nYou can respond by visiting:\nhttp://rubyforge.org/tracker/?func=detail&atid=11789&aid=22951&group_id=3065\n\nCategory: None\nGroup: None\nStatus: Open\nResolution: None\nPriority: 3\nSubmitted By: jesse dp (jessedp)\n>Assigned to: Mike Mondragon (mikemondragon)\nSummary: iPhone default subject line varient\n\nInitial Comment:\nOn line 13 of conf/mms2r_media.yml, we've changed:\n\n  - - /\\A(.*?)Sent from my iPhone.?$/im\n\nto:\n\n  - - /\\A(.*?)Sent from (my|your) iPhone.?$/im\n\n\nb/c apparently that's a variation of their default subject too\n\n\n----------------------------------------------------------------------\n\nYou can respond by visiting:\nhttp://rubyforge.org/tracker/?func=detail&atid=11789&aid=22951&group_id=3065", []string(nil), "not an MMS: a tracker mail, kept whole"},
	{"helio-image-01.mail", "Test image", []string{"image/jpeg 0628070005.jpg"}, ""},
	{"iconv-fr-text-01.mail", "D'ici un mois Géorgie  body\n\n\nMike, this is the French email message I test against with.\n\nKai", []string(nil), ""},
	{"indosat-image-01.mail", "Hello World", []string{"image/jpeg Foto_14.jpg"}, ""},
	{"indosat-image-02.mail", "", []string{"image/jpeg 6033_small.jpeg"}, "the text was a lone \".\""},
	{"iphone-image-01.mail", "", []string{"image/jpeg photo.jpg"}, ""},
	{"iphone-image-02.mail", "Jim's favorite", []string{"image/png photo.png"}, ""},
	{"maroctelecom-france-mms-01.mail", "", []string(nil), "unusable: a notification only (the MMS is on the carrier's server); every part is Maroc Telecom wrapper"},
	{"mediamessaging_o2_co_uk-image-01.mail", "Office pic", []string{"image/jpeg DSC00147.jpg"}, ""},
	{"mmode-image-01.mail", "", []string{"image/jpeg picture-3.jpg"}, ""},
	{"mms.mycricket.com-pic-and-text.mail", "Hello World", []string{"image/jpeg 02-14-08_2114.jpg"}, ""},
	{"mms.mycricket.com-pic.mail", "", []string{"image/jpeg 10-26-07_1739.jpg"}, ""},
	{"mmsreply.t-mobile.co.uk-text-image-01.mail", "Do you know this office? Do you know this office? Do\nyou know this office? Do you know this office?", []string{"image/jpeg Image002.jpg"}, ""},
	{"mtn-southafrica-mms.mail", "Obsession Obsession", []string(nil), "the only image is MTN's logo"},
	{"mycingular-image-01.mail", "Water", []string{"image/jpeg 04-18-07_1723.jpg"}, ""},
	{"netcom-image-01.mail", "Morning greetings from norway. This is a mms from norwegian carrier netcom.", []string{"image/jpeg DSC00332.jpg"}, ""},
	{"nextel-image-02.mail", "", []string{"image/jpeg Mar12_0001.jpg"}, ""},
	{"nextel-image-03.mail", "", []string{"image/jpeg Apr01_0001.jpg"}, ""},
	{"nextel-image-04.mail", "", []string{"image/jpeg Mar20_0001.jpg"}, ""},
	{"orange-uk-image-01.mail", "", []string{"image/jpeg picture.jpg"}, ""},
	{"orangefrance-text-and-image.mail", "Test ma poule", []string{"image/jpeg IMAGE.jpeg"}, ""},
	{"orangepoland-text-01.mail", "pozdro600", []string(nil), ""},
	{"pics.cingularme.com-image-01.mail", "", []string{"image/jpeg 10252006.jpg"}, ""},
	{"pxt-image-01.mail", "Kia ora ano Luke,\n\nas requested a MMS direct from my old Nokia looking out my backdoor at my un-mowed 1/4 acre section lawn in sunny Titahi Bay, crayfish capital of Wellington.\n\nI hope thats enuf txt.\n\nE no'o ake ra ano,\nP.", []string{"image/jpeg Taamara.jpg"}, ""},
	{"rogers-canada-mms-01.mail", "", []string{"image/jpeg image.jpg"}, "unnamed parts: the 1×1 JPEG stands for the photo, the rest is Rogers' page"},
	{"sprint-blackberry-01.mail", "", []string{"image/jpeg Washington-20111030-00056.jpg"}, ""},
	{"sprint-broken-image-01.mail", "", []string(nil), "unusable: Sprint Picture Mail holds the media only as links to its server"},
	{"sprint-image-01.mail", "", []string(nil), "unusable: media only as links to Sprint's server"},
	{"sprint-new-image-01.mail", "", []string(nil), "unusable: media only as links to Sprint's server"},
	{"sprint-pcs-text-01.mail", "hello world", []string(nil), ""},
	{"sprint-purged-image-01.mail", "", []string(nil), "unusable: purged picture, link only"},
	{"sprint-two-images-01.mail", "", []string(nil), "unusable: media only as links to Sprint's server"},
	{"sprint-video-01.mail", "", []string(nil), "unusable: video only as a link to Sprint's server"},
	{"suncom-blackberry.mail", "", []string{"image/jpeg IMG00065.jpg"}, ""},
	{"three-uk-image-01.mail", "", []string{"image/jpeg 17102007.jpg"}, ""},
	{"tmo.blackberry.net-image-01.mail", "", []string{"image/jpeg IMG00440.jpg"}, ""},
	{"tmobile-blackberry-02.mail", "", []string{"image/jpeg IMG00141.jpg"}, ""},
	{"tmobile-image-01.mail", "", []string{"image/jpeg 12-01-06_1234.jpg"}, ""},
	{"tmobile-image-02.mail", "Lillies", []string{"image/jpeg 07-25-05_0935.jpg"}, ""},
	{"unicel-image-01.mail", "", []string{"image/jpeg moto_0002.jpg"}, "the text was the sender's number only"},
	{"verizon-blackberry.mail", "Wonderful picture!", []string{"image/jpeg IMG00016.jpg"}, ""},
	{"verizon-image-01.mail", "", []string{"image/jpeg IMAGE_00004.jpg"}, ""},
	{"verizon-image-02.mail", "? Weird", []string{"image/jpeg 04-09-07_1114.jpg"}, ""},
	{"verizon-text-01.mail", "hello world", []string(nil), ""},
	{"verizon-video-01.mail", "", []string{"video/3gpp2 012345_67890.3g2"}, ""},
	{"virgin-mobile-image-01.mail", "", []string{"image/jpeg pic100508_3.jpg"}, ""},
	{"vodacom4me-co-za-01.mail", "", []string{"image/jpeg Ugly.jpg"}, ""},
	{"vodacom4me-co-za-02.mail", "Hello World", []string{"image/jpeg DSC00184.jpg"}, ""},
	{"vodacom4me-southafrica-mms-01.mail", "", []string{"image/gif 127612345678901h5mmqcMPXEMPXE40mms.vodac.gif"}, "a small GIF that is the person's avatar, kept"},
	{"vtext-text-01.mail", "hello world", []string(nil), ""},
	{"vzwpix.com-image-01.mail", "", []string{"image/jpeg 0827092137.jpg"}, ""},
	{"waw.plspictures.com-image-01.mail", "", []string{"image/jpeg image.jpg"}, ""},
}

// carrierSubjects are the corpus mails whose subject is the carrier's (or
// a file name), dropped by the rules; every other mail keeps its own.
var carrierSubjects = map[string]bool{
	"1nbox-2images-02.mail": true, "3ireland-mms-01.mail": true, "att-blackberry-02.mail": true,
	"att-blackberry.mail": true, "att-image-02.mail": true, "bell-canada-image-01.mail": true,
	"indosat-image-01.mail": true, "maroctelecom-france-mms-01.mail": true, "mmode-image-01.mail": true,
	"mycingular-image-01.mail": true, "orange-uk-image-01.mail": true, "orangepoland-text-01.mail": true,
	"pics.cingularme.com-image-01.mail": true, "pxt-image-01.mail": true, "rogers-canada-mms-01.mail": true,
	"sprint-blackberry-01.mail": true, "sprint-broken-image-01.mail": true, "sprint-image-01.mail": true,
	"sprint-new-image-01.mail": true, "sprint-purged-image-01.mail": true, "sprint-two-images-01.mail": true,
	"sprint-video-01.mail": true, "three-uk-image-01.mail": true, "tmo.blackberry.net-image-01.mail": true,
	"tmobile-blackberry-02.mail": true, "unicel-image-01.mail": true, "verizon-blackberry.mail": true,
	"waw.plspictures.com-image-01.mail": true,
}

// boilerplate must not survive in any text of the corpus but generic.mail.
var boilerplate = []string{"http", "www.", "MMS message", "an MMS", "Multimedia", "message from", "Sent ", "BlackBerry",
	"iPhone", "Verizon", "Sprint", "Alltel", "Orange", "Vodacom", "Click", "Copyright", "reserved", "---", "==="}

func TestMM3Corpus(t *testing.T) {
	files := testcorpus.Files(t, "eml/mms2r")
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	var listed []string
	for _, c := range mm3Cases {
		listed = append(listed, c.file)
	}
	if !slices.Equal(names, listed) {
		t.Errorf("corpus files = %v\ntable = %v: every corpus mail needs a row", names, listed)
	}
	dir := testcorpus.Dir(t, "eml/mms2r")
	for _, c := range mm3Cases {
		t.Run(c.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			orig, err := ParseEmailBytes(raw, EmailOptions{})
			if err != nil {
				t.Fatal(err)
			}
			m, err := MMSFromEmail(raw)
			if err != nil {
				t.Fatalf("MMSFromEmail = %v", err)
			}
			out, err := ToEmail(m, EmailOutOptions{ReplyDomain: "reply.example", To: "u@example.com"})
			if err != nil {
				t.Fatalf("ToEmail = %v", err)
			}
			e, err := ParseEmail(bytes.NewReader(out), EmailOptions{KeepHistory: true})
			if err != nil {
				t.Fatalf("ParseEmail(ToEmail) = %v", err)
			}
			wantSubj := orig.Subject
			if carrierSubjects[c.file] {
				wantSubj = ""
			}
			if e.Subject != strings.TrimSpace(wantSubj) {
				t.Errorf("subject = %q, want %q (original %q)", e.Subject, wantSubj, orig.Subject)
			}
			if e.Text != c.text {
				t.Errorf("text = %q, want %q", e.Text, c.text)
			}
			if c.file != "generic.mail" {
				for _, b := range boilerplate {
					if strings.Contains(e.Text, b) {
						t.Errorf("text %q holds boilerplate %q", e.Text, b)
					}
				}
			}
			var media []string
			for _, a := range e.Media {
				media = append(media, a.ContentType+" "+a.Name)
				if len(a.Data) == 0 {
					t.Errorf("media %s is empty", a.Name)
				}
			}
			if !slices.Equal(media, c.media) {
				t.Errorf("media = %q, want %q", media, c.media)
			}
			if len(e.Notes) > 0 {
				t.Errorf("ParseEmail notes on our output: %q", e.Notes)
			}
		})
	}
}

func TestLoadCarrierRules(t *testing.T) {
	extra := []byte(`{
		"generic": {"strip_text": ["^Sent from my Fairphone$"]},
		"carriers": [
			{"name": "Example Mobile", "domains": ["mms.example-carrier.net"],
			 "drop_parts": [{"name": "logo\\.png"}, {"type": "text/plain", "text": "Powered by .*"}],
			 "strip_text": ["^Delivered by Example Mobile\\.$"]},
			{"name": "verizon wireless", "domains": ["mypixmessages.com"], "strip_text": ["^VZW extra$"]}
		]}`)
	r, err := LoadCarrierRules(extra)
	if err != nil {
		t.Fatalf("LoadCarrierRules = %v", err)
	}
	for from, want := range map[string]string{
		"15551234567@MMS.Example-Carrier.net": "Example Mobile",
		"<1555@mypixmessages.com>":            "Verizon Wireless",
		"x@sub.vzwpix.com":                    "Verizon Wireless",
		"someone@example.com":                 "",
		"+15551234567/TYPE=PLMN":              "",
	} {
		if got := r.Carrier(from); got != want {
			t.Errorf("Carrier(%q) = %q, want %q", from, got, want)
		}
	}
	m := &MMS{From: "15551234567@mms.example-carrier.net", Parts: []pdu.Part{
		textPart("a.txt", "utf-8", []byte("Hi there\r\nDelivered by Example Mobile.\r\nSent from my Fairphone\r\n")),
		textPart("b.txt", "utf-8", []byte("Powered by Example")),
		mediaPart("image/png", "logo.png", []byte("\x89PNG")),
		mediaPart("image/png", "cat.png", []byte("\x89PNG cat")),
	}}
	m.Normalize(r)
	if len(m.Parts) != 2 || string(m.Parts[0].Body) != "Hi there" || m.Parts[1].Name() != "cat.png" {
		t.Errorf("Normalize = %+v", m.Parts)
	}
	// The merge added to Verizon's rules and kept its own.
	v := &MMS{From: "1@mypixmessages.com", Parts: []pdu.Part{textPart("a.txt", "utf-8",
		[]byte("ok\nVZW extra\nThis message was sent using PIX-FLIX Messaging service from Verizon Wireless!\nmore"))}}
	v.Normalize(r)
	if len(v.Parts) != 1 || string(v.Parts[0].Body) != "ok" {
		t.Errorf("Normalize(Verizon) = %+v", v.Parts)
	}
	// The default rules do not know the extra carrier.
	if DefaultCarrierRules().Carrier("1@mms.example-carrier.net") != "" {
		t.Error("LoadCarrierRules changed the default rules")
	}

	for _, bad := range []string{
		`{"carriers": [{"name": "x", "domains": ["a.b"], "strip_text": ["("]}]}`,
		`{"carriers": [{"name": "x", "domains": ["a.b"], "drop_parts": [{}]}]}`,
		`{"carriers": [{"name": "x", "domains": ["a.b"], "drop_parts": [{"sha256": "abc"}]}]}`,
		`{"carriers": [{"name": "x"}]}`,
		`{"carriers": [{"name": "x", "domains": ["a.b"], "colour": "red"}]}`,
		`not json`,
	} {
		if _, err := LoadCarrierRules([]byte(bad)); err == nil {
			t.Errorf("LoadCarrierRules(%s) = nil error", bad)
		}
	}
}

// The generic rules drop tracking pixels and thin bars but keep small
// photos (the corpus stands each photo in with a 1×1 JPEG).
func TestGenericImageRules(t *testing.T) {
	gif := func(w, h int) []byte {
		return []byte{'G', 'I', 'F', '8', '9', 'a', byte(w), byte(w >> 8), byte(h), byte(h >> 8), 0, 0, 0,
			',', 0, 0, 0, 0, byte(w), byte(w >> 8), byte(h), byte(h >> 8), 0, 2, 2, 0x44, 0x01, 0, ';'}
	}
	m := &MMS{From: "a@example.com", Parts: []pdu.Part{
		mediaPart("image/gif", "pixel.gif", gif(1, 1)),
		mediaPart("image/gif", "bar.gif", gif(600, 2)),
		mediaPart("image/gif", "smiley.gif", gif(16, 16)),
		mediaPart("image/gif", "tall.gif", gif(40, 300)),
	}}
	m.Normalize(nil)
	var names []string
	for _, p := range m.Parts {
		names = append(names, p.Name())
	}
	if want := []string{"smiley.gif", "tall.gif"}; !slices.Equal(names, want) {
		t.Errorf("Normalize kept %v, want %v", names, want)
	}
}
