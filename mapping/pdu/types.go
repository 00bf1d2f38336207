package pdu

import (
	"fmt"
	"strconv"
)

// Field is an MMS header field code (OMA-MMS-ENC §7.3, table "Field
// assignments"): the 7-bit number, so X-Mms-Message-Type is 0x0C and is sent
// as the octet 0x8C.
type Field byte

// MMS header fields, OMA-MMS-ENC 1.0–1.3.
const (
	FieldUnknown                      Field = 0x00 // in Order: the next entry of Message.Unknown
	FieldBcc                          Field = 0x01
	FieldCc                           Field = 0x02
	FieldContentLocation              Field = 0x03
	FieldContentType                  Field = 0x04
	FieldDate                         Field = 0x05
	FieldDeliveryReport               Field = 0x06
	FieldDeliveryTime                 Field = 0x07
	FieldExpiry                       Field = 0x08
	FieldFrom                         Field = 0x09
	FieldMessageClass                 Field = 0x0A
	FieldMessageID                    Field = 0x0B
	FieldMessageType                  Field = 0x0C
	FieldMMSVersion                   Field = 0x0D
	FieldMessageSize                  Field = 0x0E
	FieldPriority                     Field = 0x0F
	FieldReadReport                   Field = 0x10
	FieldReportAllowed                Field = 0x11
	FieldResponseStatus               Field = 0x12
	FieldResponseText                 Field = 0x13
	FieldSenderVisibility             Field = 0x14
	FieldStatus                       Field = 0x15
	FieldSubject                      Field = 0x16
	FieldTo                           Field = 0x17
	FieldTransactionID                Field = 0x18
	FieldRetrieveStatus               Field = 0x19
	FieldRetrieveText                 Field = 0x1A
	FieldReadStatus                   Field = 0x1B
	FieldReplyCharging                Field = 0x1C
	FieldReplyChargingDeadline        Field = 0x1D
	FieldReplyChargingID              Field = 0x1E
	FieldReplyChargingSize            Field = 0x1F
	FieldPreviouslySentBy             Field = 0x20
	FieldPreviouslySentDate           Field = 0x21
	FieldStore                        Field = 0x22
	FieldMMState                      Field = 0x23
	FieldMMFlags                      Field = 0x24
	FieldStoreStatus                  Field = 0x25
	FieldStoreStatusText              Field = 0x26
	FieldStored                       Field = 0x27
	FieldAttributes                   Field = 0x28
	FieldTotals                       Field = 0x29
	FieldMboxTotals                   Field = 0x2A
	FieldQuotas                       Field = 0x2B
	FieldMboxQuotas                   Field = 0x2C
	FieldMessageCount                 Field = 0x2D
	FieldContent                      Field = 0x2E
	FieldStart                        Field = 0x2F
	FieldAdditionalHeaders            Field = 0x30
	FieldDistributionIndicator        Field = 0x31
	FieldElementDescriptor            Field = 0x32
	FieldLimit                        Field = 0x33
	FieldRecommendedRetrievalMode     Field = 0x34
	FieldRecommendedRetrievalModeText Field = 0x35
	FieldStatusText                   Field = 0x36
	FieldApplicID                     Field = 0x37
	FieldReplyApplicID                Field = 0x38
	FieldAuxApplicInfo                Field = 0x39
	FieldContentClass                 Field = 0x3A
	FieldDRMContent                   Field = 0x3B
	FieldAdaptationAllowed            Field = 0x3C
	FieldReplaceID                    Field = 0x3D
	FieldCancelID                     Field = 0x3E
	FieldCancelStatus                 Field = 0x3F
)

// String returns the header's name as the specification writes it, e.g.
// "X-Mms-Message-Class", or "0x4A" for a code it does not define.
func (f Field) String() string {
	if f < 64 && fieldTable[f].name != "" {
		return fieldTable[f].name
	}
	return fmt.Sprintf("0x%02X", byte(f))
}

// token is the shared String machinery of the one-octet enumerations below.
func tokenString(names map[byte]string, v byte) string {
	if s, ok := names[v]; ok {
		return s
	}
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("0x%02X", v)
}

// MessageType is the value of X-Mms-Message-Type: the wire octet (0x80 =
// m-send-req). Zero means absent.
type MessageType byte

// PDU types, OMA-MMS-ENC 1.0–1.3.
const (
	TypeSendReq         MessageType = 0x80
	TypeSendConf        MessageType = 0x81
	TypeNotificationInd MessageType = 0x82
	TypeNotifyRespInd   MessageType = 0x83
	TypeRetrieveConf    MessageType = 0x84
	TypeAcknowledgeInd  MessageType = 0x85
	TypeDeliveryInd     MessageType = 0x86
	TypeReadRecInd      MessageType = 0x87
	TypeReadOrigInd     MessageType = 0x88
	TypeForwardReq      MessageType = 0x89
	TypeForwardConf     MessageType = 0x8A
	TypeMboxStoreReq    MessageType = 0x8B
	TypeMboxStoreConf   MessageType = 0x8C
	TypeMboxViewReq     MessageType = 0x8D
	TypeMboxViewConf    MessageType = 0x8E
	TypeMboxUploadReq   MessageType = 0x8F
	TypeMboxUploadConf  MessageType = 0x90
	TypeMboxDeleteReq   MessageType = 0x91
	TypeMboxDeleteConf  MessageType = 0x92
	TypeMboxDescr       MessageType = 0x93
	TypeDeleteReq       MessageType = 0x94
	TypeDeleteConf      MessageType = 0x95
	TypeCancelReq       MessageType = 0x96
	TypeCancelConf      MessageType = 0x97
)

var messageTypeNames = map[byte]string{
	0x80: "m-send-req", 0x81: "m-send-conf", 0x82: "m-notification-ind",
	0x83: "m-notifyresp-ind", 0x84: "m-retrieve-conf", 0x85: "m-acknowledge-ind",
	0x86: "m-delivery-ind", 0x87: "m-read-rec-ind", 0x88: "m-read-orig-ind",
	0x89: "m-forward-req", 0x8A: "m-forward-conf", 0x8B: "m-mbox-store-req",
	0x8C: "m-mbox-store-conf", 0x8D: "m-mbox-view-req", 0x8E: "m-mbox-view-conf",
	0x8F: "m-mbox-upload-req", 0x90: "m-mbox-upload-conf", 0x91: "m-mbox-delete-req",
	0x92: "m-mbox-delete-conf", 0x93: "m-mbox-descr", 0x94: "m-delete-req",
	0x95: "m-delete-conf", 0x96: "m-cancel-req", 0x97: "m-cancel-conf",
}

// String returns the specification's token, e.g. "m-send-req".
func (t MessageType) String() string { return tokenString(messageTypeNames, byte(t)) }

// Known reports whether t is a PDU type that OMA-MMS-ENC 1.3 defines.
func (t MessageType) Known() bool { _, ok := messageTypeNames[byte(t)]; return ok }

// ParseMessageType returns the MessageType named s (e.g. "m-send-req").
func ParseMessageType(s string) (MessageType, bool) {
	for k, v := range messageTypeNames {
		if v == s {
			return MessageType(k), true
		}
	}
	return 0, false
}

// Version is the X-Mms-MMS-Version value as a WSP Version-value octet:
// bits 6–4 the major and bits 3–0 the minor number, with the high bit set
// (0x92 = 1.2). Zero means absent.
type Version byte

// MMS versions.
const (
	Version10 Version = 0x90
	Version11 Version = 0x91
	Version12 Version = 0x92
	Version13 Version = 0x93
)

// Major returns the major version number.
func (v Version) Major() int { return int(v>>4) & 7 }

// Minor returns the minor version number, or -1 when none is given (0x0F).
func (v Version) Minor() int {
	if v&0x0F == 0x0F {
		return -1
	}
	return int(v & 0x0F)
}

// String returns the version as "1.2".
func (v Version) String() string {
	if v == 0 {
		return ""
	}
	if v.Minor() < 0 {
		return strconv.Itoa(v.Major())
	}
	return strconv.Itoa(v.Major()) + "." + strconv.Itoa(v.Minor())
}

// YesNo is a Yes (0x80) / No (0x81) header value. Zero means absent.
type YesNo byte

// Yes and No.
const (
	Yes YesNo = 0x80
	No  YesNo = 0x81
)

// Bool reports whether the value is Yes.
func (y YesNo) Bool() bool { return y == Yes }

// String returns "Yes", "No", or "" when absent.
func (y YesNo) String() string {
	return tokenString(map[byte]string{0x80: "Yes", 0x81: "No"}, byte(y))
}

// YesNoOf returns Yes for true and No for false.
func YesNoOf(b bool) YesNo {
	if b {
		return Yes
	}
	return No
}

// Priority is X-Mms-Priority.
type Priority byte

// Priorities.
const (
	PriorityLow    Priority = 0x80
	PriorityNormal Priority = 0x81
	PriorityHigh   Priority = 0x82
)

func (p Priority) String() string {
	return tokenString(map[byte]string{0x80: "Low", 0x81: "Normal", 0x82: "High"}, byte(p))
}

// Visibility is X-Mms-Sender-Visibility.
type Visibility byte

// Sender visibility.
const (
	VisibilityHide Visibility = 0x80
	VisibilityShow Visibility = 0x81
)

func (v Visibility) String() string {
	return tokenString(map[byte]string{0x80: "Hide", 0x81: "Show"}, byte(v))
}

// ResponseStatus is X-Mms-Response-Status (M-Send.conf, M-Forward.conf, …).
type ResponseStatus byte

// Response status values.
const (
	ResponseOK                       ResponseStatus = 0x80
	ResponseErrorUnspecified         ResponseStatus = 0x81
	ResponseErrorServiceDenied       ResponseStatus = 0x82
	ResponseErrorFormatCorrupt       ResponseStatus = 0x83
	ResponseErrorAddressUnresolved   ResponseStatus = 0x84
	ResponseErrorMessageNotFound     ResponseStatus = 0x85
	ResponseErrorNetworkProblem      ResponseStatus = 0x86
	ResponseErrorContentNotAccepted  ResponseStatus = 0x87
	ResponseErrorUnsupportedMessage  ResponseStatus = 0x88
	ResponseTransientFailure         ResponseStatus = 0xC0
	ResponsePermanentFailure         ResponseStatus = 0xE0
	ResponsePermanentServiceDenied   ResponseStatus = 0xE1
	ResponsePermanentFormatCorrupt   ResponseStatus = 0xE2
	ResponsePermanentContentRejected ResponseStatus = 0xE5
)

var responseStatusNames = map[byte]string{
	0x80: "Ok", 0x81: "Error-unspecified", 0x82: "Error-service-denied",
	0x83: "Error-message-format-corrupt", 0x84: "Error-sending-address-unresolved",
	0x85: "Error-message-not-found", 0x86: "Error-network-problem",
	0x87: "Error-content-not-accepted", 0x88: "Error-unsupported-message",
	0xC0: "Error-transient-failure", 0xC1: "Error-transient-sending-address-unresolved",
	0xC2: "Error-transient-message-not-found", 0xC3: "Error-transient-network-problem",
	0xC4: "Error-transient-partial-success",
	0xE0: "Error-permanent-failure", 0xE1: "Error-permanent-service-denied",
	0xE2: "Error-permanent-message-format-corrupt", 0xE3: "Error-permanent-sending-address-unresolved",
	0xE4: "Error-permanent-message-not-found", 0xE5: "Error-permanent-content-not-accepted",
	0xE6: "Error-permanent-reply-charging-limitations-not-met",
	0xE7: "Error-permanent-reply-charging-request-not-accepted",
	0xE8: "Error-permanent-reply-charging-forwarding-denied",
	0xE9: "Error-permanent-reply-charging-not-supported",
	0xEA: "Error-permanent-address-hiding-not-supported",
	0xEB: "Error-permanent-lack-of-prepaid",
}

func (s ResponseStatus) String() string { return tokenString(responseStatusNames, byte(s)) }

// Class tells whether s is a success, a transient or a permanent failure.
// Unassigned values count as the spec says: 0xC0–0xDF transient, anything
// else that is not Ok permanent.
func (s ResponseStatus) Class() StatusClass { return classOf(byte(s)) }

// StatusClass groups status values.
type StatusClass int

// Status classes.
const (
	ClassSuccess StatusClass = iota
	ClassTransient
	ClassPermanent
)

func classOf(v byte) StatusClass {
	switch {
	case v == 0x80:
		return ClassSuccess
	case v >= 0xC0 && v <= 0xDF:
		return ClassTransient
	default:
		return ClassPermanent
	}
}

// RetrieveStatus is X-Mms-Retrieve-Status (M-Retrieve.conf).
type RetrieveStatus byte

var retrieveStatusNames = map[byte]string{
	0x80: "Ok", 0xC0: "Error-transient-failure", 0xC1: "Error-transient-message-not-found",
	0xC2: "Error-transient-network-problem", 0xE0: "Error-permanent-failure",
	0xE1: "Error-permanent-service-denied", 0xE2: "Error-permanent-message-not-found",
	0xE3: "Error-permanent-content-unsupported",
}

func (s RetrieveStatus) String() string { return tokenString(retrieveStatusNames, byte(s)) }

// Class tells whether s is a success, a transient or a permanent failure.
func (s RetrieveStatus) Class() StatusClass { return classOf(byte(s)) }

// Status is X-Mms-Status (M-Delivery.ind, M-NotifyResp.ind).
type Status byte

// Status values.
const (
	StatusExpired       Status = 0x80
	StatusRetrieved     Status = 0x81
	StatusRejected      Status = 0x82
	StatusDeferred      Status = 0x83
	StatusUnrecognised  Status = 0x84
	StatusIndeterminate Status = 0x85
	StatusForwarded     Status = 0x86
	StatusUnreachable   Status = 0x87
)

var statusNames = map[byte]string{
	0x80: "Expired", 0x81: "Retrieved", 0x82: "Rejected", 0x83: "Deferred",
	0x84: "Unrecognised", 0x85: "Indeterminate", 0x86: "Forwarded", 0x87: "Unreachable",
}

func (s Status) String() string { return tokenString(statusNames, byte(s)) }

// ReadStatus is X-Mms-Read-Status.
type ReadStatus byte

// Read status values.
const (
	ReadStatusRead               ReadStatus = 0x80
	ReadStatusDeletedWithoutRead ReadStatus = 0x81
)

func (s ReadStatus) String() string {
	return tokenString(map[byte]string{0x80: "Read", 0x81: "Deleted-without-being-read"}, byte(s))
}

// ReplyCharging is X-Mms-Reply-Charging.
type ReplyCharging byte

func (r ReplyCharging) String() string {
	return tokenString(map[byte]string{0x80: "Requested", 0x81: "Requested-text-only",
		0x82: "Accepted", 0x83: "Accepted-text-only"}, byte(r))
}

// MMState is X-Mms-MM-State.
type MMState byte

func (s MMState) String() string {
	return tokenString(map[byte]string{0x80: "Draft", 0x81: "Sent", 0x82: "New",
		0x83: "Retrieved", 0x84: "Forwarded"}, byte(s))
}

// StoreStatus is X-Mms-Store-Status.
type StoreStatus byte

func (s StoreStatus) String() string {
	return tokenString(map[byte]string{0x80: "Success", 0xC0: "Error-transient-failure",
		0xC1: "Error-transient-network-problem", 0xE0: "Error-permanent-failure",
		0xE1: "Error-permanent-service-denied", 0xE2: "Error-permanent-message-format-corrupt",
		0xE3: "Error-permanent-message-not-found", 0xE4: "Error-permanent-mmbox-full"}, byte(s))
}

// ContentClass is X-Mms-Content-Class (MMS 1.3).
type ContentClass byte

func (c ContentClass) String() string {
	return tokenString(map[byte]string{0x80: "text", 0x81: "image-basic", 0x82: "image-rich",
		0x83: "video-basic", 0x84: "video-rich", 0x85: "megapixel", 0x86: "content-basic",
		0x87: "content-rich"}, byte(c))
}

// RetrievalMode is X-Mms-Recommended-Retrieval-Mode (MMS 1.3).
type RetrievalMode byte

func (r RetrievalMode) String() string {
	return tokenString(map[byte]string{0x80: "Manual"}, byte(r))
}

// CancelStatus is X-Mms-Cancel-Status (MMS 1.3).
type CancelStatus byte

func (c CancelStatus) String() string {
	return tokenString(map[byte]string{0x80: "Cancel-request-successfully-received",
		0x81: "Cancel-request-corrupted"}, byte(c))
}

// Message classes (X-Mms-Message-Class) as Message.MessageClass holds them.
const (
	ClassPersonal      = "personal"
	ClassAdvertisement = "advertisement"
	ClassInformational = "informational"
	ClassAuto          = "auto"
)

var messageClassTokens = [...]string{ClassPersonal, ClassAdvertisement, ClassInformational, ClassAuto}
