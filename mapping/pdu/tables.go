package pdu

import (
	"fmt"
	"strconv"
	"strings"
)

// contentTypes is WSP's table of well-known content types (WAP-230 Table
// 40 and the OMNA continuation), by code. Codes 0x0A and 0x16, on which the
// sources disagree, are read with the WSP 1.2 names and never written.
var contentTypes = [...]string{
	0x00: "*/*", 0x01: "text/*", 0x02: "text/html", 0x03: "text/plain",
	0x04: "text/x-hdml", 0x05: "text/x-ttml", 0x06: "text/x-vcalendar", 0x07: "text/x-vcard",
	0x08: "text/vnd.wap.wml", 0x09: "text/vnd.wap.wmlscript", 0x0A: "text/vnd.wap.wta-event",
	0x0B: "multipart/*", 0x0C: "multipart/mixed", 0x0D: "multipart/form-data",
	0x0E: "multipart/byteranges", 0x0F: "multipart/alternative", 0x10: "application/*",
	0x11: "application/java-vm", 0x12: "application/x-www-form-urlencoded",
	0x13: "application/x-hdmlc", 0x14: "application/vnd.wap.wmlc",
	0x15: "application/vnd.wap.wmlscriptc", 0x16: "application/vnd.wap.wta-eventc",
	0x17: "application/vnd.wap.uaprof", 0x18: "application/vnd.wap.wtls-ca-certificate",
	0x19: "application/vnd.wap.wtls-user-certificate", 0x1A: "application/x-x509-ca-cert",
	0x1B: "application/x-x509-user-cert", 0x1C: "image/*", 0x1D: "image/gif",
	0x1E: "image/jpeg", 0x1F: "image/tiff", 0x20: "image/png", 0x21: "image/vnd.wap.wbmp",
	0x22: "application/vnd.wap.multipart.*", 0x23: "application/vnd.wap.multipart.mixed",
	0x24: "application/vnd.wap.multipart.form-data", 0x25: "application/vnd.wap.multipart.byteranges",
	0x26: "application/vnd.wap.multipart.alternative", 0x27: "application/xml",
	0x28: "text/xml", 0x29: "application/vnd.wap.wbxml", 0x2A: "application/x-x968-cross-cert",
	0x2B: "application/x-x968-ca-cert", 0x2C: "application/x-x968-user-cert",
	0x2D: "text/vnd.wap.si", 0x2E: "application/vnd.wap.sic", 0x2F: "text/vnd.wap.sl",
	0x30: "application/vnd.wap.slc", 0x31: "text/vnd.wap.co", 0x32: "application/vnd.wap.coc",
	0x33: "application/vnd.wap.multipart.related", 0x34: "application/vnd.wap.sia",
	0x35: "text/vnd.wap.connectivity-xml", 0x36: "application/vnd.wap.connectivity-wbxml",
	0x37: "application/pkcs7-mime", 0x38: "application/vnd.wap.hashed-certificate",
	0x39: "application/vnd.wap.signed-certificate", 0x3A: "application/vnd.wap.cert-response",
	0x3B: "application/xhtml+xml", 0x3C: "application/wml+xml", 0x3D: "text/css",
	0x3E: "application/vnd.wap.mms-message", 0x3F: "application/vnd.wap.rollover-certificate",
	0x40: "application/vnd.wap.locc+wbxml", 0x41: "application/vnd.wap.loc+xml",
	0x42: "application/vnd.syncml.dm+wbxml", 0x43: "application/vnd.syncml.dm+xml",
	0x44: "application/vnd.syncml.notification", 0x45: "application/vnd.wap.xhtml+xml",
	0x46: "application/vnd.wv.csp.cir", 0x47: "application/vnd.oma.dd+xml",
	0x48: "application/vnd.oma.drm.message", 0x49: "application/vnd.oma.drm.content",
	0x4A: "application/vnd.oma.drm.rights+xml", 0x4B: "application/vnd.oma.drm.rights+wbxml",
	0x4C: "application/vnd.wv.csp+xml", 0x4D: "application/vnd.wv.csp+wbxml",
	0x4E: "application/vnd.syncml.ds.notification", 0x4F: "audio/*", 0x50: "video/*",
	0x51: "application/vnd.oma.dd2+xml", 0x52: "application/mikey",
}

var contentTypeCodes = func() map[string]uint32 {
	m := make(map[string]uint32, len(contentTypes))
	for i, s := range contentTypes {
		if i == 0x0A || i == 0x16 {
			continue // disputed: never written
		}
		m[s] = uint32(i)
	}
	return m
}()

// unknownTypePrefix names a well-known content type code without a name.
const unknownTypePrefix = "application/x-wsp-0x"

func contentTypeName(code uint64) string {
	if code < uint64(len(contentTypes)) {
		return contentTypes[code]
	}
	return fmt.Sprintf("%s%04x", unknownTypePrefix, code)
}

// contentTypeCode returns the well-known code of the lower-case type t.
func contentTypeCode(t string) (uint64, bool) {
	if c, ok := contentTypeCodes[t]; ok {
		return uint64(c), true
	}
	if h, ok := strings.CutPrefix(t, unknownTypePrefix); ok {
		if n, err := strconv.ParseUint(h, 16, 32); err == nil {
			return n, true
		}
	}
	return 0, false
}

// Well-known parameter codes (WAP-230 Table 38) this package reads.
const (
	paramQ            = 0x00
	paramCharset      = 0x01
	paramLevel        = 0x02
	paramTypeInt      = 0x03
	paramName11       = 0x05
	paramFilename11   = 0x06
	paramDifferences  = 0x07
	paramPadding      = 0x08
	paramTypeRelated  = 0x09
	paramStart12      = 0x0A
	paramStartInfo12  = 0x0B
	paramComment13    = 0x0C
	paramDomain13     = 0x0D
	paramMaxAge       = 0x0E
	paramPath13       = 0x0F
	paramSecure       = 0x10
	paramSEC          = 0x11
	paramMAC          = 0x12
	paramCreationDate = 0x13
	paramModDate      = 0x14
	paramReadDate     = 0x15
	paramSize         = 0x16
	paramName         = 0x17
	paramFilename     = 0x18
	paramStart        = 0x19
	paramStartInfo    = 0x1A
	paramComment      = 0x1B
	paramDomain       = 0x1C
	paramPath         = 0x1D
)

type paramKind uint8

const (
	pkRaw       paramKind = iota // value shape unknown to us: kept raw
	pkCharset                    // Well-known-charset
	pkInteger                    // Integer-value
	pkText                       // Text-string
	pkTextValue                  // Text-value (No-value | Token-text | Quoted-string)
	pkMedia                      // Constrained-encoding media type
	pkDate                       // Date-value
)

type paramInfo struct {
	name string
	kind paramKind
}

var paramTable = [...]paramInfo{
	paramQ:            {"q", pkRaw},
	paramCharset:      {"charset", pkCharset},
	paramLevel:        {"level", pkRaw},
	paramTypeInt:      {"type", pkInteger},
	0x04:              {"", pkRaw},
	paramName11:       {"name", pkText},
	paramFilename11:   {"filename", pkText},
	paramDifferences:  {"differences", pkRaw},
	paramPadding:      {"padding", pkRaw},
	paramTypeRelated:  {"type", pkMedia},
	paramStart12:      {"start", pkText},
	paramStartInfo12:  {"start-info", pkText},
	paramComment13:    {"comment", pkText},
	paramDomain13:     {"domain", pkText},
	paramMaxAge:       {"max-age", pkInteger},
	paramPath13:       {"path", pkText},
	paramSecure:       {"secure", pkRaw},
	paramSEC:          {"sec", pkRaw},
	paramMAC:          {"mac", pkRaw},
	paramCreationDate: {"creation-date", pkDate},
	paramModDate:      {"modification-date", pkDate},
	paramReadDate:     {"read-date", pkDate},
	paramSize:         {"size", pkInteger},
	paramName:         {"name", pkTextValue},
	paramFilename:     {"filename", pkTextValue},
	paramStart:        {"start", pkTextValue},
	paramStartInfo:    {"start-info", pkTextValue},
	paramComment:      {"comment", pkTextValue},
	paramDomain:       {"domain", pkTextValue},
	paramPath:         {"path", pkTextValue},
}

// canonicalParam is the code Append writes for each parameter name: the
// WSP 1.1–1.3 codes that every handset reads.
var canonicalParam = map[string]byte{
	"charset": paramCharset, "name": paramName11, "filename": paramFilename11,
	"type": paramTypeRelated, "start": paramStart12, "start-info": paramStartInfo12,
	"comment": paramComment13, "domain": paramDomain13, "max-age": paramMaxAge,
	"path": paramPath13, "creation-date": paramCreationDate,
	"modification-date": paramModDate, "read-date": paramReadDate, "size": paramSize,
}

// WSP header field codes (WAP-230 Table 39) used in part headers.
const (
	wspContentLocation = 0x0E
	wspContentID       = 0x40
)

// wspHeaderNames names the WSP header codes, for display.
var wspHeaderNames = [...]string{
	"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges", "Age",
	"Allow", "Authorization", "Cache-Control", "Connection", "Content-Base", "Content-Encoding",
	"Content-Language", "Content-Length", "Content-Location", "Content-MD5", "Content-Range",
	"Content-Type", "Date", "Etag", "Expires", "From", "Host", "If-Modified-Since", "If-Match",
	"If-None-Match", "If-Range", "If-Unmodified-Since", "Location", "Last-Modified",
	"Max-Forwards", "Pragma", "Proxy-Authenticate", "Proxy-Authorization", "Public", "Range",
	"Referer", "Retry-After", "Server", "Transfer-Encoding", "Upgrade", "User-Agent", "Vary",
	"Via", "Warning", "WWW-Authenticate", "Content-Disposition", "X-Wap-Application-Id",
	"X-Wap-Content-URI", "X-Wap-Initiator-URI", "Accept-Application", "Bearer-Indication",
	"Push-Flag", "Profile", "Profile-Diff", "Profile-Warning", "Expect", "TE", "Trailer",
	"Accept-Charset", "Accept-Encoding", "Cache-Control", "Content-Range", "X-Wap-Tod",
	"Content-ID", "Set-Cookie", "Cookie", "Encoding-Version", "Profile-Warning",
	"Content-Disposition", "X-Wap-Security", "Cache-Control",
}

// HeaderName returns the name of a part header: the textual name, or the
// WSP name of a well-known code.
func (h Header) HeaderName() string {
	if h.Code == 0 {
		return h.Name
	}
	c := int(h.Code & 0x7F)
	if c < len(wspHeaderNames) {
		return wspHeaderNames[c]
	}
	return fmt.Sprintf("0x%02X", c)
}
