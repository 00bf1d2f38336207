package pdu

// Value returns the value of header field f of m, and whether m has it
// (by the rule Append uses: a zero value is absent). The dynamic type is
// the Message member's: a token enumeration (MessageType, Version, YesNo,
// Priority, …), string, EncodedString, time.Time (Date), *From, uint64
// (sizes, and the value of X-Mms-Message-Count, -Start and -Limit),
// *TimeValue, ContentType, or a slice of []EncodedString, []PreviouslySentBy,
// []PreviouslySentDate, []MMFlag, []Field (X-Mms-Attributes), []Quantity or
// []ElementDescriptor for a repeatable field. Fields without a value of
// their own (Content, Additional-headers, codes the package does not
// define) report false.
func (m *Message) Value(f Field) (any, bool) {
	if f == FieldContentType {
		return m.ContentType, m.ContentType.Type != ""
	}
	if f >= 64 || m.count(f) == 0 {
		return nil, false
	}
	switch f {
	case FieldMessageType:
		return m.Type, true
	case FieldMMSVersion:
		return m.Version, true
	case FieldDate:
		return m.Date, true
	case FieldFrom:
		return m.From, true
	case FieldTo:
		return m.To, true
	case FieldCc:
		return m.Cc, true
	case FieldBcc:
		return m.Bcc, true
	case FieldMessageSize:
		return m.MessageSize, true
	case FieldReplyChargingSize:
		return m.ReplyChargingSize, true
	case FieldPriority:
		return m.Priority, true
	case FieldResponseStatus:
		return m.ResponseStatus, true
	case FieldRetrieveStatus:
		return m.RetrieveStatus, true
	case FieldStatus:
		return m.Status, true
	case FieldSenderVisibility:
		return m.SenderVisibility, true
	case FieldReadStatus:
		return m.ReadStatus, true
	case FieldReplyCharging:
		return m.ReplyCharging, true
	case FieldMMState:
		return m.MMState, true
	case FieldStoreStatus:
		return m.StoreStatus, true
	case FieldContentClass:
		return m.ContentClass, true
	case FieldRecommendedRetrievalMode:
		return m.RecommendedRetrievalMode, true
	case FieldCancelStatus:
		return m.CancelStatus, true
	case FieldExpiry:
		return m.Expiry, true
	case FieldDeliveryTime:
		return m.DeliveryTime, true
	case FieldReplyChargingDeadline:
		return m.ReplyChargingDeadline, true
	case FieldMessageCount:
		return *m.MessageCount, true
	case FieldStart:
		return *m.Start, true
	case FieldLimit:
		return *m.Limit, true
	case FieldPreviouslySentBy:
		return m.PreviouslySentBy, true
	case FieldPreviouslySentDate:
		return m.PreviouslySentDate, true
	case FieldMMFlags:
		return m.MMFlags, true
	case FieldAttributes:
		return m.Attributes, true
	case FieldMboxTotals:
		return m.MboxTotals, true
	case FieldMboxQuotas:
		return m.MboxQuotas, true
	case FieldElementDescriptor:
		return m.ElementDescriptors, true
	}
	switch fieldTable[f].kind {
	case kindYesNo:
		return *m.yesNo(f), true
	case kindEncoded:
		return *m.encoded(f), true
	case kindText, kindClass:
		return *m.textField(f), true
	}
	return nil, false
}
