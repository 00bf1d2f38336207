package pdu

// Design note: the per-field facts of the MMS headers (OMA-MMS-ENC §7.3)
// live in fieldTable, indexed by field code: the name the specification
// writes, the key the JSON view (package pdujson) gives the field, the
// form of its value, whether it may repeat, and whether Append writes it
// among the leading headers. The encoder, the decoder and the JSON view read
// their names, repetition and ordering from here rather than each keeping a
// switch of its own. Reading or writing a value still needs code per field
// (which Message member, which Go type), and that code stays in the
// decodeField and writeField switches: a table of accessor funcs would cost
// an indirect call per header on the hot paths.

// valueKind is the grammar of a header's value.
type valueKind uint8

const (
	kindNone        valueKind = iota // no value of its own in Message (Content, Additional-headers)
	kindToken                        // one octet of an enumeration (Short-integer)
	kindYesNo                        // Yes (0x80) | No (0x81)
	kindText                         // Text-string
	kindEncoded                      // Encoded-string-value
	kindClass                        // Message-class-value: a token or a Token-text
	kindLongInteger                  // Long-integer (sizes)
	kindInteger                      // Integer-value
	kindDate                         // Date-value
	kindTime                         // Value-length (Absolute-token Date-value | Relative-token Delta-seconds-value)
	kindFrom                         // Value-length (Address-present-token Encoded-string-value | Insert-address-token)
	kindStructured                   // Value-length and a structure of its own (Previously-Sent-By, MM-Flags, …)
	kindContentType                  // Content-type-value, followed by the body
)

// fieldInfo is what the package knows of one header field.
type fieldInfo struct {
	name   string    // as the specification writes it: "X-Mms-Message-Class"
	json   string    // the key of its own in the JSON view, "" for one under "headers"
	kind   valueKind // the form of the value
	repeat bool      // the header may appear more than once
	lead   uint8     // 1 + its place among the headers Append writes first; 0 for the others
}

// fieldTable holds the facts of every field code OMA-MMS-ENC 1.3 defines.
var fieldTable = [64]fieldInfo{
	FieldBcc:                          {name: "Bcc", json: "bcc", kind: kindEncoded, repeat: true, lead: 9},
	FieldCc:                           {name: "Cc", json: "cc", kind: kindEncoded, repeat: true, lead: 8},
	FieldContentLocation:              {name: "X-Mms-Content-Location", kind: kindText},
	FieldContentType:                  {name: "Content-Type", json: "content_type", kind: kindContentType},
	FieldDate:                         {name: "Date", json: "date", kind: kindDate, lead: 5},
	FieldDeliveryReport:               {name: "X-Mms-Delivery-Report", kind: kindYesNo},
	FieldDeliveryTime:                 {name: "X-Mms-Delivery-Time", kind: kindTime},
	FieldExpiry:                       {name: "X-Mms-Expiry", kind: kindTime},
	FieldFrom:                         {name: "From", json: "from", kind: kindFrom, lead: 6},
	FieldMessageClass:                 {name: "X-Mms-Message-Class", kind: kindClass},
	FieldMessageID:                    {name: "Message-ID", json: "message_id", kind: kindText, lead: 4},
	FieldMessageType:                  {name: "X-Mms-Message-Type", json: "message_type", kind: kindToken, lead: 1},
	FieldMMSVersion:                   {name: "X-Mms-MMS-Version", json: "mms_version", kind: kindToken, lead: 3},
	FieldMessageSize:                  {name: "X-Mms-Message-Size", kind: kindLongInteger},
	FieldPriority:                     {name: "X-Mms-Priority", kind: kindToken},
	FieldReadReport:                   {name: "X-Mms-Read-Report", kind: kindYesNo},
	FieldReportAllowed:                {name: "X-Mms-Report-Allowed", kind: kindYesNo},
	FieldResponseStatus:               {name: "X-Mms-Response-Status", kind: kindToken},
	FieldResponseText:                 {name: "X-Mms-Response-Text", kind: kindEncoded},
	FieldSenderVisibility:             {name: "X-Mms-Sender-Visibility", kind: kindToken},
	FieldStatus:                       {name: "X-Mms-Status", kind: kindToken},
	FieldSubject:                      {name: "Subject", json: "subject", kind: kindEncoded, lead: 10},
	FieldTo:                           {name: "To", json: "to", kind: kindEncoded, repeat: true, lead: 7},
	FieldTransactionID:                {name: "X-Mms-Transaction-ID", json: "transaction_id", kind: kindText, lead: 2},
	FieldRetrieveStatus:               {name: "X-Mms-Retrieve-Status", kind: kindToken},
	FieldRetrieveText:                 {name: "X-Mms-Retrieve-Text", kind: kindEncoded},
	FieldReadStatus:                   {name: "X-Mms-Read-Status", kind: kindToken},
	FieldReplyCharging:                {name: "X-Mms-Reply-Charging", kind: kindToken},
	FieldReplyChargingDeadline:        {name: "X-Mms-Reply-Charging-Deadline", kind: kindTime},
	FieldReplyChargingID:              {name: "X-Mms-Reply-Charging-ID", kind: kindText},
	FieldReplyChargingSize:            {name: "X-Mms-Reply-Charging-Size", kind: kindLongInteger},
	FieldPreviouslySentBy:             {name: "X-Mms-Previously-Sent-By", kind: kindStructured, repeat: true},
	FieldPreviouslySentDate:           {name: "X-Mms-Previously-Sent-Date", kind: kindStructured, repeat: true},
	FieldStore:                        {name: "X-Mms-Store", kind: kindYesNo},
	FieldMMState:                      {name: "X-Mms-MM-State", kind: kindToken},
	FieldMMFlags:                      {name: "X-Mms-MM-Flags", kind: kindStructured, repeat: true},
	FieldStoreStatus:                  {name: "X-Mms-Store-Status", kind: kindToken},
	FieldStoreStatusText:              {name: "X-Mms-Store-Status-Text", kind: kindEncoded},
	FieldStored:                       {name: "X-Mms-Stored", kind: kindYesNo},
	FieldAttributes:                   {name: "X-Mms-Attributes", kind: kindToken, repeat: true},
	FieldTotals:                       {name: "X-Mms-Totals", kind: kindYesNo},
	FieldMboxTotals:                   {name: "X-Mms-Mbox-Totals", kind: kindStructured, repeat: true},
	FieldQuotas:                       {name: "X-Mms-Quotas", kind: kindYesNo},
	FieldMboxQuotas:                   {name: "X-Mms-Mbox-Quotas", kind: kindStructured, repeat: true},
	FieldMessageCount:                 {name: "X-Mms-Message-Count", kind: kindInteger},
	FieldContent:                      {name: "Content"},
	FieldStart:                        {name: "X-Mms-Start", kind: kindInteger},
	FieldAdditionalHeaders:            {name: "Additional-headers"},
	FieldDistributionIndicator:        {name: "X-Mms-Distribution-Indicator", kind: kindYesNo},
	FieldElementDescriptor:            {name: "X-Mms-Element-Descriptor", kind: kindStructured, repeat: true},
	FieldLimit:                        {name: "X-Mms-Limit", kind: kindInteger},
	FieldRecommendedRetrievalMode:     {name: "X-Mms-Recommended-Retrieval-Mode", kind: kindToken},
	FieldRecommendedRetrievalModeText: {name: "X-Mms-Recommended-Retrieval-Mode-Text", kind: kindEncoded},
	FieldStatusText:                   {name: "X-Mms-Status-Text", kind: kindEncoded},
	FieldApplicID:                     {name: "X-Mms-Applic-ID", kind: kindText},
	FieldReplyApplicID:                {name: "X-Mms-Reply-Applic-ID", kind: kindText},
	FieldAuxApplicInfo:                {name: "X-Mms-Aux-Applic-Info", kind: kindText},
	FieldContentClass:                 {name: "X-Mms-Content-Class", kind: kindToken},
	FieldDRMContent:                   {name: "X-Mms-DRM-Content", kind: kindYesNo},
	FieldAdaptationAllowed:            {name: "X-Mms-Adaptation-Allowed", kind: kindYesNo},
	FieldReplaceID:                    {name: "X-Mms-Replace-ID", kind: kindText},
	FieldCancelID:                     {name: "X-Mms-Cancel-ID", kind: kindText},
	FieldCancelStatus:                 {name: "X-Mms-Cancel-Status", kind: kindToken},
}

// leading are the fields Append writes first, in this order, when they are
// set; every other field follows in code order, then Unknown, then
// Content-Type. They are the fields whose lead is set in fieldTable.
var leading = func() (l [10]Field) {
	for f, fi := range fieldTable {
		if fi.lead > 0 {
			l[fi.lead-1] = Field(f)
		}
	}
	return l
}()

// isLeading reports, by field code, whether the field is among leading.
var isLeading = func() (t [64]bool) {
	for f, fi := range fieldTable {
		t[f] = fi.lead > 0
	}
	return t
}()

// repeatable reports whether a field may appear more than once.
func repeatable(f Field) bool { return f < 64 && fieldTable[f].repeat }

// keepsEmpty reports whether a decoded header of field f whose value is
// the zero value is still written back: a text whose value is empty, or a
// size of 0 (8e 01 00), survive a round trip. Other kinds have no zero
// value on the wire.
func keepsEmpty(f Field) bool {
	if f >= 64 {
		return false
	}
	switch fieldTable[f].kind {
	case kindText, kindEncoded, kindClass, kindLongInteger:
		return true
	}
	return false
}

// JSONName returns the key that the JSON view of a message (package
// pdujson) gives the field at its top level, e.g. "message_type", or ""
// for a field it shows under "headers" by its String name.
func (f Field) JSONName() string {
	if f < 64 {
		return fieldTable[f].json
	}
	return ""
}

// Repeatable reports whether the field may appear more than once in a
// PDU (To, Cc, Bcc, X-Mms-Previously-Sent-By, …).
func (f Field) Repeatable() bool { return repeatable(f) }

// LeadingFields returns the fields that Append writes first, in the order it
// writes them: X-Mms-Message-Type, X-Mms-Transaction-ID, X-Mms-MMS-Version,
// Message-ID, Date, From, To, Cc, Bcc and Subject. The slice is the caller's.
func LeadingFields() []Field { l := leading; return l[:] }
