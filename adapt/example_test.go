package adapt_test

import (
	"context"
	"fmt"

	"github.com/mmsrelay/mmsrelay/adapt"
)

func ExampleFit() {
	p, _ := adapt.LookupProfile("basic")
	items := []adapt.Item{
		{Name: "note.txt", ContentType: "text/plain", Data: []byte("See you at 8")},
		{Name: "invoice.pdf", ContentType: "application/pdf", Data: make([]byte, 1258291)},
		{Name: "voice.amr", ContentType: "audio/amr", Data: make([]byte, 12*1024)},
	}
	res, err := adapt.Fit(context.Background(), items, p.MaxMessageBytes, p)
	if err != nil {
		panic(err)
	}
	for _, it := range res.Items {
		fmt.Println("send", it.Name)
	}
	for _, d := range res.Dropped {
		fmt.Println(d.Note)
	}
	// Output:
	// send note.txt
	// send voice.amr
	// [invoice.pdf (1.2 MB) was not sent (unsupported type)]
}

func ExampleTruncateText() {
	fmt.Println(adapt.TruncateText("Grüße aus Köln", 8))
	// Output: Grü…
}
