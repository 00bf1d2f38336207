// Reply-history and signature stripping.
//
// Design note: an MMS should carry the new words of a reply, not the whole
// thread below it. StripHistory works on lines, in this order:
//
//  1. Only the part before a forward marker ("Begin forwarded message:",
//     "---------- Forwarded message ---------", and their translations) is
//     examined: a forward keeps its content.
//  2. The text is cut at the first line that starts history for good: an
//     Outlook "-----Original Message-----", a "____" rule followed by a
//     "From:" line, a "From: … Sent:/Date: … To:/Subject:" header block, an
//     attribution ("On … wrote:", "Le … a écrit :", "Am … schrieb …:",
//     "El … escribió:", …) that is not followed by quoted lines, or the
//     "-- " signature delimiter.
//  3. Blocks of ">" lines are removed wherever they are (interleaved
//     replies keep the answers between them), with the attribution line
//     just before a block.
//  4. Trailing one-liners such as "Sent from my iPhone" are removed.
//
// If nothing is left, the original (normalised) text is returned.

package mapping

import (
	"regexp"
	"strings"
)

// NormalizeText turns CRLF and CR into LF, removes trailing whitespace from
// each line, collapses runs of more than two blank lines into two and trims
// blank lines at both ends.
func NormalizeText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := 0
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\u00a0\f\v")
		if l == "" {
			blank++
			if blank > 2 {
				continue
			}
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.Trim(strings.Join(out, "\n"), "\n")
}

var (
	forwardRE = regexp.MustCompile(`(?i)^\s*(begin forwarded message:|-+ *(forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado|mensagem encaminhada|messaggio inoltrato|doorgestuurd bericht) *-+|-+ *forwarded by .*-+|début du message réexpédié :|anfang der weitergeleiteten (e-mail|nachricht):|inicio del mensaje reenviado:)\s*$`)

	outlookSepRE = regexp.MustCompile(`(?i)^\s*-{3,} *(original message|ursprüngliche nachricht|message d'origine|mensaje original|messaggio originale|oorspronkelijk bericht|mensagem original|alkuperäinen viesti|originalmeddelande) *-{3,}\s*$`)

	ruleRE = regexp.MustCompile(`^\s*_{10,}\s*$`)

	headerFromRE = regexp.MustCompile(`(?i)^\s*\*?(from|de|von|van|da|från|fra|od)\s?\*?:`)
	headerSentRE = regexp.MustCompile(`(?i)^\s*\*?(sent|date|envoyé|gesendet|datum|enviado|fecha|verzonden|inviato|data|skickat|sendt|wysłano)\s?\*?:`)
	headerToRE   = regexp.MustCompile(`(?i)^\s*\*?(to|à|a|an|para|aan|till|til|do|subject|objet|betreff|asunto|onderwerp|oggetto|assunto|ämne|emne|temat|cc)\s?\*?:`)

	// Attributions, possibly wrapped over up to three lines.
	attributionREs = []*regexp.Regexp{
		regexp.MustCompile(`(?is)^\s*on\b.{1,250}\bwrote\s*:\s*$`),
		regexp.MustCompile(`(?is)^\s*le\b.{1,250}\ba écrit\s*:\s*$`),
		regexp.MustCompile(`(?is)^\s*am\b.{1,250}\bschrieb\b.{0,250}:\s*$`),
		regexp.MustCompile(`(?is)^\s*el\b.{1,250}\bescribió\s*:\s*$`),
		regexp.MustCompile(`(?is)^\s*op\b.{1,250}\bschreef\b.{0,250}:\s*$`),
		regexp.MustCompile(`(?is)^\s*il\b.{1,250}\bha scritto\s*:\s*$`),
		regexp.MustCompile(`(?is)^\s*em\b.{1,250}\bescreveu\s*:\s*$`),
		regexp.MustCompile(`(?is)^\s*den\b.{1,250}\bskrev\b.{0,250}:\s*$`),
	}
	// A bare "Name <addr> wrote:" counts only right before quoted lines.
	looseAttributionRE = regexp.MustCompile(`(?i)^.{1,200}\b(wrote|écrit|schrieb|escribió|schreef|scritto|escreveu|skrev)\s*:\s*$`)

	mobileSigRE = regexp.MustCompile(`(?i)^\s*(sent from my .{1,40}|sent from (mail|outlook|yahoo mail|samsung mobile|my mobile)( for .{1,30})?|sent (via|with|using) (proton ?mail|spark|blackberry|the .{1,30} app|.{1,30} mobile|.{1,30} for (ios|android)).{0,20}|sent on .{1,60} from my .{1,40}|get outlook for .{1,30}|envoyé de mon .{1,40}|envoyé depuis .{1,40}|von meinem .{1,40} gesendet|gesendet von .{1,40}|enviado desde mi .{1,40}|enviado do meu .{1,40}|inviato da .{1,40}|verzonden vanaf .{1,40}|skickat från .{1,40})\s*$`)
)

// StripHistory returns the new words of a message body: quoted reply
// history, the signature and trailing "Sent from my iPhone" lines are
// removed, and whitespace is normalised (see NormalizeText). Forwarded
// content is kept. If stripping would leave nothing, the normalised original
// is returned.
func StripHistory(s string) string {
	orig := NormalizeText(s)
	lines := strings.Split(orig, "\n")

	// 1. Only look before the first forward marker.
	end := len(lines)
	for i, l := range lines {
		if forwardRE.MatchString(l) {
			end = i
			break
		}
	}
	head, tail := lines[:end], lines[end:]

	// 2. Cut for good.
	head = head[:cutPoint(head)]

	// 3. Remove quote blocks and their attributions.
	head = removeQuotes(head)

	// 4. Trailing mobile signatures.
	for {
		for len(head) > 0 && strings.TrimSpace(head[len(head)-1]) == "" {
			head = head[:len(head)-1]
		}
		if len(head) > 0 && mobileSigRE.MatchString(head[len(head)-1]) {
			head = head[:len(head)-1]
			continue
		}
		break
	}

	headText := NormalizeText(strings.Join(head, "\n"))
	tailText := NormalizeText(strings.Join(tail, "\n"))
	switch {
	case headText == "" && tailText == "":
		return orig
	case headText == "":
		return tailText
	case tailText == "":
		return headText
	}
	return headText + "\n\n" + tailText
}

// cutPoint returns the index of the first line that starts history for
// good, or len(lines).
func cutPoint(lines []string) int {
	for i, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case l == "--" || l == "-- " || l == "—":
			// A signature delimiter with nothing above it is no cut.
			if i > 0 {
				return i
			}
		case outlookSepRE.MatchString(l):
			return i
		case ruleRE.MatchString(l) && nextNonBlankMatches(lines, i+1, headerFromRE):
			return i
		case headerFromRE.MatchString(l) && isHeaderBlock(lines, i):
			return i
		case t != "" && !strings.HasPrefix(t, ">"):
			if n := attribution(lines, i); n > 0 {
				// Followed by quoted lines: handled by removeQuotes.
				if !nextNonBlankQuoted(lines, i+n) {
					return i
				}
			}
		}
	}
	return len(lines)
}

// attribution returns how many lines (1 to 3) starting at i form an
// attribution line such as "On Mon, 1 Jan 2024, Bob <b@x> wrote:", or 0.
func attribution(lines []string, i int) int {
	joined := ""
	for n := 1; n <= 3 && i+n <= len(lines); n++ {
		l := strings.TrimSpace(lines[i+n-1])
		if l == "" || strings.HasPrefix(l, ">") {
			return 0
		}
		if joined != "" {
			joined += " "
		}
		joined += l
		if len(joined) > 300 {
			return 0
		}
		if !strings.HasSuffix(joined, ":") || !attributionStart(joined) {
			continue
		}
		for _, re := range attributionREs {
			if re.MatchString(joined) {
				return n
			}
		}
	}
	return 0
}

// attributionStart is a cheap filter before the attribution regexps: the
// first word must be one they start with.
func attributionStart(s string) bool {
	w, _, _ := strings.Cut(s, " ")
	switch strings.ToLower(w) {
	case "on", "le", "am", "el", "op", "il", "em", "den":
		return true
	}
	return false
}

func nextNonBlankMatches(lines []string, i int, re *regexp.Regexp) bool {
	for ; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "" {
			return re.MatchString(lines[i])
		}
	}
	return false
}

func nextNonBlankQuoted(lines []string, i int) bool {
	for ; i < len(lines); i++ {
		if t := strings.TrimSpace(lines[i]); t != "" {
			return strings.HasPrefix(t, ">")
		}
	}
	return false
}

// isHeaderBlock reports whether the "From:" line at i starts a quoted
// header block: within the next five lines, a Sent/Date line and a To or
// Subject line.
func isHeaderBlock(lines []string, i int) bool {
	sent, to := false, false
	for j := i + 1; j < len(lines) && j <= i+6; j++ {
		l := lines[j]
		if strings.TrimSpace(l) == "" {
			if sent || to {
				break
			}
			continue
		}
		switch {
		case headerSentRE.MatchString(l):
			sent = true
		case headerToRE.MatchString(l):
			to = true
		}
	}
	return sent && to
}

// removeQuotes drops every block of lines starting with ">" together with
// the attribution just above it (and blank lines between the two).
func removeQuotes(lines []string) []string {
	drop := make([]bool, len(lines))
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(strings.TrimSpace(lines[i]), ">") {
			continue
		}
		drop[i] = true
		if i > 0 && strings.HasPrefix(strings.TrimSpace(lines[i-1]), ">") {
			continue
		}
		// First line of a block: look up for its attribution.
		j := i - 1
		for j >= 0 && strings.TrimSpace(lines[j]) == "" {
			j--
		}
		if j < 0 {
			continue
		}
		for k := max(0, j-2); k <= j; k++ {
			if n := attribution(lines, k); n > 0 && k+n-1 == j {
				for m := k; m < i; m++ {
					drop[m] = true
				}
				break
			}
			if k == j && looseAttributionRE.MatchString(strings.TrimSpace(lines[j])) {
				for m := j; m < i; m++ {
					drop[m] = true
				}
			}
		}
	}
	out := lines[:0:0]
	for i, l := range lines {
		if !drop[i] {
			out = append(out, l)
		}
	}
	return out
}
