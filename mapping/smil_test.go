package mapping

import (
	"encoding/xml"
	"reflect"
	"strings"
	"testing"
	"time"
)

// smilDoc is the subset of SMIL the tests read back.
type smilDoc struct {
	XMLName xml.Name `xml:"smil"`
	Root    struct {
		Width  int `xml:"width,attr"`
		Height int `xml:"height,attr"`
	} `xml:"head>layout>root-layout"`
	Regions []struct {
		ID     string `xml:"id,attr"`
		Top    int    `xml:"top,attr"`
		Height int    `xml:"height,attr"`
	} `xml:"head>layout>region"`
	Pars []struct {
		Dur   string `xml:"dur,attr"`
		Img   []src  `xml:"img"`
		Audio []src  `xml:"audio"`
		Video []src  `xml:"video"`
		Text  []src  `xml:"text"`
		Ref   []src  `xml:"ref"`
	} `xml:"body>par"`
}

type src struct {
	Src    string `xml:"src,attr"`
	Region string `xml:"region,attr"`
}

func decodeSMIL(t *testing.T, b []byte) smilDoc {
	t.Helper()
	var d smilDoc
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatalf("xml.Unmarshal(BuildSMIL) = %v\n%s", err, b)
	}
	return d
}

func TestBuildSMIL(t *testing.T) {
	slides := SlidesFor(
		[]string{"image.jpg", "voice.amr", "clip.3gp", "card.vcf"},
		[]string{"image/jpeg", "audio/amr", "video/3gpp", "text/x-vcard"},
		"text.txt")
	b := BuildSMIL(slides, Layout{})
	d := decodeSMIL(t, b)
	if d.Root.Width != 320 || d.Root.Height != 480 {
		t.Errorf("root-layout = %dx%d, want 320x480", d.Root.Width, d.Root.Height)
	}
	if len(d.Regions) != 2 || d.Regions[0].ID != "Image" || d.Regions[1].ID != "Text" || d.Regions[1].Top != d.Regions[0].Height {
		t.Errorf("regions = %+v, want Image above Text", d.Regions)
	}
	if len(d.Pars) != 4 {
		t.Fatalf("%d slides, want 4:\n%s", len(d.Pars), b)
	}
	p := d.Pars
	if p[0].Dur != "5000ms" || !reflect.DeepEqual(p[0].Img, []src{{"image.jpg", "Image"}}) || !reflect.DeepEqual(p[0].Text, []src{{"text.txt", "Text"}}) {
		t.Errorf("slide 1 = %+v", p[0])
	}
	if p[1].Dur != "30000ms" || !reflect.DeepEqual(p[1].Audio, []src{{"voice.amr", ""}}) || len(p[1].Text) != 0 {
		t.Errorf("slide 2 = %+v", p[1])
	}
	if p[2].Dur != "30000ms" || !reflect.DeepEqual(p[2].Video, []src{{"clip.3gp", "Image"}}) {
		t.Errorf("slide 3 = %+v", p[2])
	}
	// A text/x-vcard is still text: it shows as <text>.
	if len(p[3].Text) != 1 || p[3].Text[0].Src != "card.vcf" {
		t.Errorf("slide 4 = %+v", p[3])
	}
}

func TestBuildSMILTextOnly(t *testing.T) {
	d := decodeSMIL(t, BuildSMIL(SlidesFor(nil, nil, "text.txt"), Layout{Width: 176, Height: 208, SlideDur: 8 * time.Second}))
	if d.Root.Width != 176 || len(d.Regions) != 1 || d.Regions[0].ID != "Text" || d.Regions[0].Height != 208 {
		t.Errorf("layout = %+v %+v", d.Root, d.Regions)
	}
	if len(d.Pars) != 1 || d.Pars[0].Dur != "8000ms" || d.Pars[0].Text[0].Src != "text.txt" {
		t.Errorf("pars = %+v", d.Pars)
	}
}

func TestBuildSMILEscapes(t *testing.T) {
	b := BuildSMIL([]Slide{{Media: `a"<&>'.jpg`, ContentType: "image/jpeg", Text: "t&t.txt", Dur: 1500 * time.Millisecond}, {Media: "x.bin", ContentType: "application/octet-stream"}}, Layout{})
	d := decodeSMIL(t, b)
	if d.Pars[0].Img[0].Src != `a"<&>'.jpg` || d.Pars[0].Text[0].Src != "t&t.txt" || d.Pars[0].Dur != "1500ms" {
		t.Errorf("escaped slide = %+v", d.Pars[0])
	}
	if len(d.Pars[1].Ref) != 1 || d.Pars[1].Ref[0].Src != "x.bin" {
		t.Errorf("ref slide = %+v", d.Pars[1])
	}
	if !strings.HasPrefix(string(b), "<smil>") {
		t.Errorf("BuildSMIL = %q…", b[:20])
	}
}

func TestUniqueNames(t *testing.T) {
	in := []NameHint{
		{"", "text/plain"},
		{"", "image/jpeg"},
		{"", "image/jpeg"},
		{"Photo 1.JPG", "image/jpeg"},
		{`C:\Users\bob\photo 1.jpg`, "image/jpeg"},
		{"../../etc/passwd", "image/png"},
		{"ciële.txt", "text/plain"},
		{"てすと.txt", "text/plain"},
		{"image.jpeg", "image/jpeg"},
		{"IMAGE.jpg", "image/jpeg"},
		{"voice", "audio/amr"},
		{"clip.mp4", "video/3gpp"},
		{"report.v2", "application/pdf"},
		{"archive.tar.gz", "application/x-gzip"},
		{"", "application/x-unknown"},
		{"card", "text/x-vcard; charset=utf-8"},
		{strings.Repeat("long", 30) + ".gif", "image/gif"},
		{"  ...  ", "image/gif"},
		{"a\x00b<c>.png", "image/png"},
	}
	want := []string{
		"text.txt",
		"image.jpg",
		"image-2.jpg",
		"Photo-1.jpg",
		"photo-1-2.jpg",
		"passwd.png",
		"ciele.txt",
		"text-2.txt",
		"image.jpeg",
		"IMAGE-3.jpg", // image-2.jpg is taken, case-insensitively
		"voice.amr",
		"clip.3gp",
		"report.v2.pdf",
		"archive.tar.gz",
		"file",
		"card.vcf",
		strings.Repeat("long", 10) + ".gif",
		"image.gif",
		"ab-c.png",
	}
	got := UniqueNames(in)
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Errorf("UniqueNames: name %d (%q) = %q, want %q", i, in[i].Name, got[i], want[i])
		}
	}
	if ContentID("image.jpg") != "<image.jpg>" {
		t.Errorf("ContentID = %q", ContentID("image.jpg"))
	}
}
