package mapping

import (
	"errors"
	"strings"
	"testing"
)

func TestParseNumber(t *testing.T) {
	us := NumberOptions{DefaultRegion: "US", ShortCodes: []string{"12345"}}
	tests := []struct {
		in   string
		opts NumberOptions
		want string // "" means refused
	}{
		{"+15551234567", us, "+15551234567"},
		{"15551234567", us, "+15551234567"},
		{"5551234567", us, "+15551234567"},
		{"+1-555-123-4567", us, "+15551234567"},
		{"+1 (555) 123-4567", us, "+15551234567"},
		{"(555) 123-4567", us, "+15551234567"},
		{"555.123.4567", us, "+15551234567"},
		{"+15551234567/TYPE=PLMN", us, "+15551234567"},
		{"+15551234567/type=plmn", us, "+15551234567"},
		{"+15551234567/Type=Plmn", us, "+15551234567"},
		{"+447911123456", us, "+447911123456"},
		{"+4915112345678", us, "+4915112345678"},
		{"447911123456", us, "+447911123456"}, // international reading, valid
		{"07911123456", NumberOptions{DefaultRegion: "GB"}, "+447911123456"},
		{"011447911123456", us, "+447911123456"}, // IDD
		{"15551234567", NumberOptions{}, "+15551234567"},
		{"12345", us, "12345"},
		{"12345/TYPE=PLMN", us, "12345"},
		{"+15551234567", NumberOptions{DefaultRegion: "US", StrictValidity: true}, ""},
		{"+12125550123", NumberOptions{DefaultRegion: "US", StrictValidity: true}, "+12125550123"},

		// Refusals.
		{"", us, ""},
		{"sales-2125550123", us, ""},
		{"1800FLOWERS", us, ""},
		{"+15551234567x55", us, ""},
		{"5551234567 ext 55", us, ""},
		{"+1555123456789012345", us, ""},
		{"5551234", us, ""}, // local only
		{"555", us, ""},
		{"54321", us, ""}, // not a configured short code
		{"+", us, ""},
		{"---", us, ""},
		{"+1+5551234567", us, ""},
		{"+15551234567/TYPE=IPV4", us, ""},
		{"+15551234567/TYPE=PLMN/TYPE=PLMN", us, ""},
		{"(555 123-4567", us, ""},
		{"555) 123-4567", us, ""},
		{"+15551234567;x", us, ""},
		{"５５５１２３４５６７", us, ""},                         // fullwidth digits
		{"+999123456789", us, ""},                      // no such country code
		{"5551234567", NumberOptions{}, "+5551234567"}, // no region: read as international (Brazil)
		{"0123", NumberOptions{}, ""},
		{"john.doe", us, ""},
		{"+1 555 123 4567 8", us, ""},
	}
	for _, tt := range tests {
		got, err := ParseNumber(tt.in, tt.opts)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseNumber(%q) = %q, want error", tt.in, got)
			} else if !errors.Is(err, ErrNotNumber) {
				t.Errorf("ParseNumber(%q) error = %v, want ErrNotNumber", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseNumber(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseRecipient(t *testing.T) {
	opts := RecipientOptions{
		Domains:       []string{"mms.example.net", "MMS2.Example.org."},
		NumberOptions: NumberOptions{DefaultRegion: "US", ShortCodes: []string{"12345"}},
	}
	tests := []struct {
		in      string
		opts    RecipientOptions
		want    Recipient
		wantErr error
	}{
		{"+15551234567@mms.example.net", opts, Recipient{"+15551234567", "+15551234567/TYPE=PLMN", "mms.example.net"}, nil},
		{"<5551234567@MMS.Example.NET>", opts, Recipient{"+15551234567", "+15551234567/TYPE=PLMN", "MMS.Example.NET"}, nil},
		{"+15551234567/TYPE=PLMN@mms2.example.org", opts, Recipient{"+15551234567", "+15551234567/TYPE=PLMN", "mms2.example.org"}, nil},
		{`"+1 (555) 123-4567"@mms.example.net`, opts, Recipient{"+15551234567", "+15551234567/TYPE=PLMN", "mms.example.net"}, nil},
		{"Bob <+447911123456@mms.example.net>", opts, Recipient{"+447911123456", "+447911123456/TYPE=PLMN", "mms.example.net"}, nil},
		{"12345@mms.example.net", opts, Recipient{"12345", "12345/TYPE=PLMN", "mms.example.net"}, nil},
		{"+15551234567@anything.example", RecipientOptions{NumberOptions: opts.NumberOptions}, Recipient{"+15551234567", "+15551234567/TYPE=PLMN", "anything.example"}, nil},
		{"+15551234567", RecipientOptions{NumberOptions: opts.NumberOptions}, Recipient{"+15551234567", "+15551234567/TYPE=PLMN", ""}, nil},

		{"+15551234567@example.com", opts, Recipient{}, ErrNotMMSDomain},
		{"+15551234567@mms.example.net.evil.com", opts, Recipient{}, ErrNotMMSDomain},
		{"+15551234567", opts, Recipient{}, ErrNotMMSDomain},
		{"sales-2125550123@mms.example.net", opts, Recipient{}, ErrNotNumber},
		{"1800FLOWERS@mms.example.net", opts, Recipient{}, ErrNotNumber},
		{"+15551234567x55@mms.example.net", opts, Recipient{}, ErrNotNumber},
		{"postmaster@mms.example.net", opts, Recipient{}, ErrNotNumber},
		{"+15551234567@", opts, Recipient{}, ErrNotNumber},
		{`"+1555\"1234567"@mms.example.net`, opts, Recipient{}, ErrNotNumber},
		{"", opts, Recipient{}, ErrNotMMSDomain},
	}
	for _, tt := range tests {
		got, err := ParseRecipient(tt.in, tt.opts)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseRecipient(%q) = %+v, %v, want error %v", tt.in, got, err, tt.wantErr)
			}
			var ae *AddressError
			if err != nil && (!errors.As(err, &ae) || ae.Addr != tt.in) {
				t.Errorf("ParseRecipient(%q) error %v is not an *AddressError for the address", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRecipient(%q) = %+v, %v, want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestAddressErrorText(t *testing.T) {
	_, err := ParseRecipient("1800FLOWERS@mms.example.net", RecipientOptions{NumberOptions: NumberOptions{DefaultRegion: "US"}})
	if err == nil || !strings.Contains(err.Error(), "letters are not allowed") || !strings.Contains(err.Error(), "1800FLOWERS@mms.example.net") {
		t.Errorf("error = %v, want the address and the reason", err)
	}
	_, err = ParseRecipient("+15551234567@example.com", RecipientOptions{Domains: []string{"mms.example.net"}})
	if err == nil || !strings.Contains(err.Error(), "not an MMS domain") {
		t.Errorf("error = %v, want 'not an MMS domain'", err)
	}
	if got := PLMNAddress("+15551234567"); got != "+15551234567/TYPE=PLMN" {
		t.Errorf("PLMNAddress = %q", got)
	}
}
