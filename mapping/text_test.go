package mapping

import "testing"

func TestNormalizeText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a\r\nb\r\n", "a\nb"},
		{"a  \t\nb ", "a\nb"},
		{"\n\n\na\n\n\n\n\nb\n\n", "a\n\n\nb"},
		{"a\rb", "a\nb"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := NormalizeText(tt.in); got != tt.want {
			t.Errorf("NormalizeText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestStripHistory(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "Hello there\n", "Hello there"},
		{"gmail reply",
			"Sounds good, see you at 5.\r\n\r\nOn Mon, Jan 1, 2024 at 10:00 AM Bob Smith <bob@example.com> wrote:\r\n> Are we still on for tonight?\r\n>\r\n> Bob\r\n",
			"Sounds good, see you at 5."},
		{"gmail wrapped attribution",
			"Yes!\n\nOn Mon, Jan 1, 2024 at 10:00 AM Bob Smith <\nbob@example.com> wrote:\n\n> Coming?\n",
			"Yes!"},
		{"attribution without quotes cuts",
			"Top post.\n\nOn 1 Jan 2024, at 10:00, Bob <bob@example.com> wrote:\n\nOld text not quoted\n",
			"Top post."},
		{"french",
			"D'accord.\n\nLe lun. 1 janv. 2024 à 10:00, Bob <bob@example.com> a écrit :\n> Tu viens ?\n",
			"D'accord."},
		{"german",
			"Ja.\n\nAm 01.01.2024 um 10:00 schrieb Bob <bob@example.com>:\n> Kommst du?\n",
			"Ja."},
		{"spanish",
			"Sí.\n\nEl lun, 1 ene 2024 a las 10:00, Bob (<bob@example.com>) escribió:\n> ¿Vienes?\n",
			"Sí."},
		{"interleaved",
			"Bob wrote:\n> Question one?\nAnswer one.\n> Question two?\nAnswer two.\n",
			"Answer one.\nAnswer two."},
		{"outlook original message",
			"See attached.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nTo: Alice\nSubject: hi\n\nOld\n",
			"See attached."},
		{"outlook rule",
			"Fine by me.\n\n________________________________\nFrom: Bob Smith <bob@example.com>\nSent: Monday, January 1, 2024 10:00 AM\nTo: Alice\nSubject: Plan\n\nOld\n",
			"Fine by me."},
		{"header block",
			"Noted.\n\nFrom: Bob Smith [mailto:bob@example.com]\nSent: Monday, January 1, 2024 10:00 AM\nTo: Alice\nSubject: Plan\n\nOld stuff\n",
			"Noted."},
		{"german header block",
			"Gut.\n\nVon: Bob\nGesendet: Montag, 1. Januar 2024 10:00\nAn: Alice\nBetreff: Plan\n\nAlt\n",
			"Gut."},
		{"signature",
			"Call me.\n\n-- \nBob Smith\nACME Corp\n",
			"Call me."},
		{"sent from iphone",
			"On my way\n\nSent from my iPhone\n",
			"On my way"},
		{"sent from iphone before history",
			"On my way\n\nSent from my iPhone\n\nOn Jan 1, 2024, at 10:00, Bob <bob@example.com> wrote:\n\n> Where are you?\n",
			"On my way"},
		{"proton", "Hi\n\nSent with Proton Mail secure email.\n", "Hi"},
		{"sprint", "Pic\nSent on the Sprint® Now Network from my BlackBerry®", "Pic"},
		{"sent with love kept", "Happy birthday!\nSent with love", "Happy birthday!\nSent with love"},
		{"german mobile",
			"Bin da\n\nVon meinem iPhone gesendet\n",
			"Bin da"},
		{"only history keeps original",
			"> quoted only\n> more\n",
			"> quoted only\n> more"},
		{"only signature keeps original",
			"Sent from my iPhone",
			"Sent from my iPhone"},
		{"forward kept",
			"FYI\n\n---------- Forwarded message ---------\nFrom: Bob <bob@example.com>\nDate: Mon, Jan 1, 2024\nSubject: Plan\nTo: Alice <alice@example.com>\n\nThe plan is attached.\n-- \nBob\n",
			"FYI\n\n---------- Forwarded message ---------\nFrom: Bob <bob@example.com>\nDate: Mon, Jan 1, 2024\nSubject: Plan\nTo: Alice <alice@example.com>\n\nThe plan is attached.\n--\nBob"},
		{"apple forward kept",
			"Look\n\nBegin forwarded message:\n\nFrom: Bob <bob@example.com>\nSubject: Plan\nDate: 1 January 2024\nTo: Alice\n\n> nested quote kept\n",
			"Look\n\nBegin forwarded message:\n\nFrom: Bob <bob@example.com>\nSubject: Plan\nDate: 1 January 2024\nTo: Alice\n\n> nested quote kept"},
		{"signature then forward",
			"FYI\n-- \nAlice\n\n---------- Forwarded message ---------\nFrom: Bob\n\nBody\n",
			"FYI\n\n---------- Forwarded message ---------\nFrom: Bob\n\nBody"},
		{"whitespace",
			"a  \r\n\r\n\r\n\r\n\r\nb\r\n",
			"a\n\n\nb"},
		{"wrote in a sentence is kept",
			"He wrote: nothing.\nOk",
			"He wrote: nothing.\nOk"},
		{"dash line at top is not a signature",
			"--\nhello",
			"--\nhello"},
	}
	for _, tt := range tests {
		if got := StripHistory(tt.in); got != tt.want {
			t.Errorf("%s: StripHistory(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}
