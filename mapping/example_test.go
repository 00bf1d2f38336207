package mapping_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mmsrelay/mmsrelay/mapping"
)

func ExampleParseRecipient() {
	opts := mapping.RecipientOptions{
		Domains:       []string{"mms.example.net"},
		NumberOptions: mapping.NumberOptions{DefaultRegion: "US"},
	}
	for _, addr := range []string{"+1 (555) 123-4567@MMS.example.net", "1800FLOWERS@mms.example.net", "5551234567@example.com"} {
		r, err := mapping.ParseRecipient(addr, opts)
		switch {
		case errors.Is(err, mapping.ErrNotMMSDomain):
			fmt.Println("550 5.1.1", addr)
		case errors.Is(err, mapping.ErrNotNumber):
			fmt.Println("553 5.1.3", addr)
		default:
			fmt.Println(r.Address)
		}
	}
	// Output:
	// +15551234567/TYPE=PLMN
	// 553 5.1.3 1800FLOWERS@mms.example.net
	// 550 5.1.1 5551234567@example.com
}

func ExampleParseEmail() {
	msg := "From: Bob <bob@example.com>\r\n" +
		"To: 5551234567@mms.example.net\r\n" +
		"Subject: =?UTF-8?Q?Caf=C3=A9?=\r\n" +
		"\r\n" +
		"See you there.\r\n" +
		"\r\n" +
		"On Mon, Jan 1, 2024 at 10:00 AM Alice <alice@example.com> wrote:\r\n" +
		"> Coffee?\r\n"
	e, err := mapping.ParseEmail(strings.NewReader(msg), mapping.EmailOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(e.From.Name, e.To, e.Subject)
	fmt.Println(e.Text)
	// Output:
	// Bob [5551234567@mms.example.net] Café
	// See you there.
}

func ExampleBuildSMIL() {
	names := mapping.UniqueNames([]mapping.NameHint{
		{Name: "", ContentType: "text/plain"},
		{Name: "Été 2024.JPEG", ContentType: "image/jpeg"},
	})
	fmt.Println(names)
	fmt.Print(string(mapping.BuildSMIL(mapping.SlidesFor(names[1:], []string{"image/jpeg"}, names[0]), mapping.Layout{})))
	// Output:
	// [text.txt Ete-2024.jpeg]
	// <smil>
	// <head>
	// <layout>
	// <root-layout width="320" height="480"/>
	// <region id="Image" left="0" top="0" width="320" height="320" fit="meet"/>
	// <region id="Text" left="0" top="320" width="320" height="160" fit="scroll"/>
	// </layout>
	// </head>
	// <body>
	// <par dur="5000ms">
	// <img src="Ete-2024.jpeg" region="Image"/>
	// <text src="text.txt" region="Text"/>
	// </par>
	// </body>
	// </smil>
}
