// HTML to plain text.
//
// Design note: a phone shows plain text, so an HTML-only mail is rendered the
// way a person would retype it: no tags, nothing from <head>, <script> or
// <style>, entities decoded, block elements on their own lines, list items
// as "- " lines, links as "text (https://url)" when the text does not already
// say the URL, images as their alt text, and runs of whitespace collapsed
// outside <pre>. Blockquotes come out with "> " prefixes so that
// StripHistory treats quoted HTML replies like quoted plain-text ones.

package mapping

import (
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// maxHTMLDepth bounds the element nesting the converter descends into.
const maxHTMLDepth = 256

// HTMLToText converts an HTML document or fragment to readable plain text.
// It never fails: html.Parse recovers from any malformed markup.
func HTMLToText(s string) string {
	t, _ := htmlToText(s)
	return t
}

// htmlToText returns the text of s and the Content-IDs its cid: URLs
// reference (img src, background, links), in document order.
func htmlToText(s string) (string, []string) {
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		return "", nil
	}
	w := &textWriter{}
	w.node(doc, 0)
	return NormalizeText(w.b.String()), w.cids
}

// textWriter accumulates text with collapsed whitespace; breaks are
// requested with newline and written lazily before the next text.
type textWriter struct {
	b       strings.Builder
	space   bool // a space is pending
	nl      int  // newlines pending
	pre     int  // inside <pre>
	list    int  // list nesting
	cids    []string
	started bool
}

func (w *textWriter) text(s string) {
	if s == "" {
		return
	}
	if w.started {
		if w.nl > 0 {
			w.flush()
		} else if w.space && !strings.HasSuffix(w.b.String(), " ") && !strings.HasSuffix(w.b.String(), "\n") {
			w.b.WriteByte(' ')
		}
	}
	w.nl, w.space = 0, false
	w.b.WriteString(s)
	w.started = true
}

// flush writes the pending line breaks, counting those already written.
func (w *textWriter) flush() {
	out := w.b.String()
	have := len(out) - len(strings.TrimRight(out, "\n"))
	for i := have; i < min(w.nl, 2); i++ {
		w.b.WriteByte('\n')
	}
	w.nl, w.space = 0, false
}

func (w *textWriter) newline(n int) {
	if n > w.nl {
		w.nl = n
	}
	w.space = false
}

// words writes a text node with its whitespace collapsed.
func (w *textWriter) words(s string) {
	s = strings.ReplaceAll(s, "\u00a0", " ")
	if w.pre > 0 {
		lines := strings.Split(s, "\n")
		for i, l := range lines {
			if i > 0 {
				w.newline(1)
			}
			if l != "" {
				w.text(l)
			}
		}
		return
	}
	f := strings.Fields(s)
	if len(f) == 0 {
		if s != "" && w.nl == 0 {
			w.space = true
		}
		return
	}
	if isSpaceByte(s[0]) && w.nl == 0 {
		w.space = true
	}
	w.text(strings.Join(f, " "))
	if isSpaceByte(s[len(s)-1]) {
		w.space = true
	}
}

func isSpaceByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func (w *textWriter) cid(u string) {
	u = strings.TrimSpace(u)
	if len(u) > 4 && strings.EqualFold(u[:4], "cid:") {
		w.cids = append(w.cids, strings.Trim(u[4:], "<>"))
	}
}

func (w *textWriter) children(n *html.Node, depth int) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.node(c, depth+1)
	}
}

func (w *textWriter) node(n *html.Node, depth int) {
	if depth > maxHTMLDepth {
		return
	}
	switch n.Type {
	case html.TextNode:
		w.words(n.Data)
		return
	case html.DocumentNode:
		w.children(n, depth)
		return
	case html.ElementNode:
	default:
		return
	}
	w.cid(attr(n, "background"))
	switch n.DataAtom {
	case atom.Head, atom.Script, atom.Style, atom.Title, atom.Template, atom.Noscript, atom.Object, atom.Iframe, atom.Svg:
		return
	case atom.Br:
		if w.started {
			w.flush()
			w.b.WriteByte('\n')
		}
		return
	case atom.Img:
		w.cid(attr(n, "src"))
		if alt := strings.TrimSpace(attr(n, "alt")); alt != "" {
			w.words(" " + alt + " ")
		}
		return
	case atom.Hr:
		w.newline(1)
		w.text("---")
		w.newline(1)
		return
	case atom.Pre:
		w.newline(2)
		w.pre++
		w.children(n, depth)
		w.pre--
		w.newline(2)
		return
	case atom.Ul, atom.Ol, atom.Dl:
		w.newline(1)
		w.list++
		w.children(n, depth)
		w.list--
		w.newline(1)
		return
	case atom.Li:
		w.newline(1)
		w.text(strings.Repeat("  ", max(w.list-1, 0)) + "- ")
		w.children(n, depth)
		w.newline(1)
		return
	case atom.Blockquote:
		sub := &textWriter{}
		sub.children(n, depth)
		w.cids = append(w.cids, sub.cids...)
		q := NormalizeText(sub.b.String())
		if q == "" {
			return
		}
		w.newline(1)
		for i, l := range strings.Split(q, "\n") {
			if i > 0 {
				w.newline(1)
			}
			if l == "" {
				w.text(">")
			} else {
				w.text("> " + l)
			}
		}
		w.newline(1)
		return
	case atom.A:
		href := strings.TrimSpace(attr(n, "href"))
		w.cid(href)
		sub := &textWriter{}
		sub.children(n, depth)
		w.cids = append(w.cids, sub.cids...)
		label := strings.TrimSpace(sub.b.String())
		if label == "" {
			return
		}
		if sub.b.Len() > 0 && isSpaceByte(sub.b.String()[0]) {
			w.space = true
		}
		if strings.Contains(label, "\n") {
			// A block inside the link: keep its lines.
			w.newline(1)
		}
		w.text(label)
		if u := linkURL(href); u != "" && !sameLink(label, u) {
			w.text(" (" + u + ")")
		}
		return
	case atom.Td, atom.Th:
		w.space = w.nl == 0
		w.children(n, depth)
		w.space = w.nl == 0
		return
	}
	if blockElems[n.DataAtom] {
		gap := 1
		if n.DataAtom == atom.P || isHeading(n.DataAtom) {
			gap = 2
		}
		w.newline(gap)
		w.children(n, depth)
		w.newline(gap)
		return
	}
	w.children(n, depth)
}

func isHeading(a atom.Atom) bool {
	switch a {
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		return true
	}
	return false
}

var blockElems = map[atom.Atom]bool{
	atom.Address: true, atom.Article: true, atom.Aside: true, atom.Center: true,
	atom.Dd: true, atom.Details: true, atom.Dialog: true, atom.Div: true, atom.Dt: true,
	atom.Fieldset: true, atom.Figcaption: true, atom.Figure: true, atom.Footer: true,
	atom.Form: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true,
	atom.H5: true, atom.H6: true, atom.Header: true, atom.Main: true, atom.Nav: true,
	atom.P: true, atom.Section: true, atom.Summary: true, atom.Table: true,
	atom.Tbody: true, atom.Thead: true, atom.Tfoot: true, atom.Tr: true,
	atom.Caption: true, atom.Body: true, atom.Html: true,
}

// linkURL returns the URL worth showing for href, or "".
func linkURL(href string) string {
	l := strings.ToLower(href)
	for _, p := range []string{"http://", "https://", "ftp://", "mailto:", "tel:", "sms:"} {
		if strings.HasPrefix(l, p) {
			return href
		}
	}
	if strings.HasPrefix(l, "www.") {
		return href
	}
	return ""
}

// sameLink reports whether the link text already says the URL.
func sameLink(label, u string) bool {
	norm := func(s string) string {
		s = strings.ToLower(strings.TrimSpace(s))
		for _, p := range []string{"mailto:", "tel:", "sms:", "https://", "http://", "ftp://"} {
			s = strings.TrimPrefix(s, p)
		}
		s = strings.TrimPrefix(s, "www.")
		return strings.TrimRight(s, "/")
	}
	return norm(label) == norm(u)
}
