package replies

import (
	"fmt"
	"strings"
	"unicode"
)

// Keyword is a handset reply that the relay acts on instead of (or as well
// as) forwarding it.
type Keyword uint8

// Keywords, as ParseKeyword returns them.
const (
	// KeywordStop opts the number out of mail from the conversation's
	// sender (or from everyone, with ScopeAll): STOP, UNSUBSCRIBE, CANCEL,
	// END, QUIT.
	KeywordStop Keyword = iota + 1
	// KeywordStopAll opts the number out of mail from every sender,
	// whatever the scope: STOPALL.
	KeywordStopAll
	// KeywordStart ends an opt-out: START, UNSTOP.
	KeywordStart
	// KeywordHelp asks for the help text: HELP, INFO.
	KeywordHelp
)

var keywordNames = [...]string{
	KeywordStop:    "STOP",
	KeywordStopAll: "STOPALL",
	KeywordStart:   "START",
	KeywordHelp:    "HELP",
}

// String returns the canonical word of k ("STOP", "STOPALL", "START",
// "HELP").
func (k Keyword) String() string {
	if int(k) < len(keywordNames) && keywordNames[k] != "" {
		return keywordNames[k]
	}
	return fmt.Sprintf("Keyword(%d)", uint8(k))
}

// keywords maps every recognised word, upper case, to its Keyword.
var keywords = map[string]Keyword{
	"STOP":        KeywordStop,
	"UNSUBSCRIBE": KeywordStop,
	"CANCEL":      KeywordStop,
	"END":         KeywordStop,
	"QUIT":        KeywordStop,
	"STOPALL":     KeywordStopAll,
	"START":       KeywordStart,
	"UNSTOP":      KeywordStart,
	"HELP":        KeywordHelp,
	"INFO":        KeywordHelp,
}

// maxKeywordText bounds the text ParseKeyword looks at; anything longer is
// a message, not a keyword.
const maxKeywordText = 64

// ParseKeyword reports whether text, the whole text of a handset's reply,
// is one of the opt-out keywords, and which. Case, white space (including
// inside, so "Stop all" is STOPALL, and zero-width spaces) and trailing
// "." or "!" are ignored; anything else makes it an ordinary message, so
// "please stop by" and "STOP it" are not opt-outs.
func ParseKeyword(text string) (Keyword, bool) {
	if len(text) > maxKeywordText {
		return 0, false
	}
	var b strings.Builder
	for _, r := range text {
		switch {
		case unicode.IsSpace(r), r == '\u200b', r == '\u200c', r == '\u200d', r == '\u2060', r == '\ufeff':
			continue
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	w := strings.TrimRight(b.String(), ".!")
	k, ok := keywords[w]
	return k, ok
}
