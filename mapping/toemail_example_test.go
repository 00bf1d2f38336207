package mapping_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/mmsrelay/mmsrelay/mapping"
)

// A carrier's MM3 mail becomes the reply email: Verizon's footer goes, the
// person's words and photo stay.
func ExampleToEmail() {
	mm3 := "From: 2015550123@vzwpix.com\r\nTo: bob@example.com\r\nSubject: Pic\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n" +
		"Look at this!\r\n\r\nThis message was sent using PIX-FLIX Messaging service from Verizon Wireless!\r\n" +
		"--b\r\nContent-Type: image/jpeg; name=IMG 1.jpg\r\nContent-Transfer-Encoding: base64\r\n\r\n/9j/4AAQ\r\n--b--\r\n"
	m, err := mapping.MMSFromEmail([]byte(mm3))
	if err != nil {
		log.Fatal(err)
	}
	out, err := mapping.ToEmail(m, mapping.EmailOutOptions{ReplyDomain: "mms.example.net", To: "bob@example.com",
		OrigMessageID: "<x1@example.com>"})
	if err != nil {
		log.Fatal(err)
	}
	e, _ := mapping.ParseEmail(bytes.NewReader(out), mapping.EmailOptions{})
	fmt.Println(e.From, e.Subject, e.InReplyTo)
	fmt.Printf("%q\n", e.Text)
	fmt.Println(e.Media[0].ContentType, e.Media[0].Name)
	// Output:
	// "+12015550123" <+12015550123@mms.example.net> Pic [x1@example.com]
	// "Look at this!"
	// image/jpeg IMG-1.jpg
}
