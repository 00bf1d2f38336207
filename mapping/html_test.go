package mapping

import (
	"reflect"
	"strings"
	"testing"
)

func TestHTMLToText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "<p>Hello <b>world</b></p>", "Hello world"},
		{"head script style",
			"<html><head><title>T</title><style>p{color:red}</style><script>alert(1)</script></head><body>Hi<script>x()</script></body></html>",
			"Hi"},
		{"entities", "<p>Fish &amp; chips &lt;3 &eacute;t&eacute; &#x1F600;&nbsp;!</p>", "Fish & chips <3 été 😀 !"},
		{"paragraphs", "<p>One</p><p>Two</p>", "One\n\nTwo"},
		{"divs", "<div>One</div><div>Two</div>", "One\nTwo"},
		{"gmail br in div", "<div>One<br></div><div><br></div><div>Two</div>", "One\n\nTwo"},
		{"br", "a<br>b<br/><br>c", "a\nb\n\nc"},
		{"whitespace", "  lots   of\n\t spaces  <span> here </span>", "lots of spaces here"},
		{"list", "<p>Items:</p><ul><li>one</li><li>two <i>2</i></li></ul><p>end</p>", "Items:\n\n- one\n- two 2\n\nend"},
		{"ordered list", "<ol><li>a</li><li>b</li></ol>", "- a\n- b"},
		{"nested list", "<ul><li>a<ul><li>b</li></ul></li></ul>", "- a\n  - b"},
		{"link differs", `<a href="https://example.com/x">Click here</a>`, "Click here (https://example.com/x)"},
		{"link same", `<a href="https://example.com/">https://example.com</a>`, "https://example.com"},
		{"link www", `<a href="http://www.example.com">www.example.com</a>`, "www.example.com"},
		{"mailto same", `<a href="mailto:bob@example.com">bob@example.com</a>`, "bob@example.com"},
		{"javascript link", `<a href="javascript:void(0)">Go</a>`, "Go"},
		{"image alt", `<p>Look: <img src="cid:a@b" alt="a cat"> nice</p>`, "Look: a cat nice"},
		{"image no alt", `<p>Look:<img src="x.png"></p>`, "Look:"},
		{"table", "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>", "a b\nc d"},
		{"pre", "<pre>  x\n    y</pre>", "  x\n    y"},
		{"heading", "<h1>Title</h1>Body", "Title\n\nBody"},
		{"blockquote", "<p>Yes</p><blockquote><p>Old</p><p>Older</p></blockquote>", "Yes\n\n> Old\n>\n> Older"},
		{"broken", "<p>unclosed <b>bold <i>it", "unclosed bold it"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		if got := HTMLToText(tt.in); got != tt.want {
			t.Errorf("%s: HTMLToText(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestHTMLCIDs(t *testing.T) {
	_, got := htmlToText(`<body background="cid:bg"><img src="cid:two@x"><p><img src="CID:one@x"></p><a href="cid:doc"></a></body>`)
	want := []string{"bg", "two@x", "one@x", "doc"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("htmlToText cids = %q, want %q", got, want)
	}
}

func TestHTMLToTextDeep(t *testing.T) {
	s := strings.Repeat("<div>", 1000) + "deep" + strings.Repeat("</div>", 1000)
	_ = HTMLToText(s) // must not blow up; depth is bounded
}

func TestHTMLReplyStripped(t *testing.T) {
	in := `<div dir="ltr">See you then!</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Jan 1, 2024 at 10:00 AM Bob &lt;<a href="mailto:bob@example.com">bob@example.com</a>&gt; wrote:<br></div><blockquote class="gmail_quote">Dinner at 8?</blockquote></div>`
	if got := StripHistory(HTMLToText(in)); got != "See you then!" {
		t.Errorf("StripHistory(HTMLToText(gmail reply)) = %q, want %q", got, "See you then!")
	}
}
