package dsn_test

import (
	"fmt"
	"time"

	"github.com/mmsrelay/mmsrelay/mail/dsn"
)

// A bounce for an MMS that the operator refused, read back.
func ExampleBuild() {
	notify := []string(nil) // the sender gave no NOTIFY: failures are reported
	if !dsn.ShouldNotify(notify, dsn.ActionFailed) || dsn.NullSender("alice@example.com") {
		return
	}
	raw, err := dsn.Build(dsn.Report{
		ReportingHost:  "relay.example.net",
		OriginalSender: "alice@example.com",
		Arrival:        time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC),
		Original:       []byte("Subject: Hello\r\nMessage-ID: <1@example.com>\r\n\r\nHi!\r\n"),
		Recipients: []dsn.Recipient{{
			Addr:           "+15551234567@mms.example.net",
			Action:         dsn.ActionFailed,
			Status:         "5.1.1",
			DiagnosticCode: "550 5.1.1 no such number",
			RemoteMTA:      "mmsc.operator.example",
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := dsn.Parse(raw)
	if err != nil {
		fmt.Println(err)
		return
	}
	rc := r.Recipients[0]
	fmt.Println(r.OriginalSender, r.Ret)
	fmt.Println(rc.Addr, rc.Action, rc.Status, rc.RemoteMTA)
	fmt.Println(rc.Reason)
	// Output:
	// alice@example.com FULL
	// +15551234567@mms.example.net failed 5.1.1 mmsc.operator.example
	// The mobile network refused the message: 550 5.1.1 no such number
}
