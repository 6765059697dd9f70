// Package protocol holds the names of the Durable Streams protocol (headers, query
// parameters, content types, sentinel offsets and SSE fields) that the client (dsclient)
// and the in-process server (dsclient/dstest) share, written once. It holds names only: no
// behaviour.
package protocol

// Headers (PROTOCOL.md sections 5 and 13.2).
const (
	HeaderNextOffset     = "Stream-Next-Offset"
	HeaderUpToDate       = "Stream-Up-To-Date"
	HeaderClosed         = "Stream-Closed"
	HeaderCursor         = "Stream-Cursor"
	HeaderSeq            = "Stream-Seq"
	HeaderTTL            = "Stream-TTL"
	HeaderExpiresAt      = "Stream-Expires-At"
	HeaderEarliestOffset = "Stream-Earliest-Offset"
	HeaderForkedFrom     = "Stream-Forked-From"
	HeaderForkOffset     = "Stream-Fork-Offset"
	HeaderForkSubOffset  = "Stream-Fork-Sub-Offset"
	HeaderSSEEncoding    = "Stream-Sse-Data-Encoding"
	HeaderProducerID     = "Producer-Id"
	HeaderProducerEpoch  = "Producer-Epoch"
	HeaderProducerSeq    = "Producer-Seq"
	HeaderExpectedSeq    = "Producer-Expected-Seq"
	HeaderReceivedSeq    = "Producer-Received-Seq"
	HeaderRetryAfter     = "Retry-After"
	HeaderContentType    = "Content-Type"
)

// Query parameters of reads (sections 5.6 to 5.8).
const (
	ParamOffset = "offset"
	ParamLive   = "live"
	ParamCursor = "cursor"
)

// Values of the live parameter.
const (
	LiveLongPoll = "long-poll"
	LiveSSE      = "sse"
)

// Content types.
const (
	ContentTypeJSON        = "application/json"
	ContentTypeOctetStream = "application/octet-stream"
	ContentTypeEventStream = "text/event-stream"
)

// Sentinel offsets (section 8).
const (
	OffsetBeginning = "-1"
	OffsetNow       = "now"
)

// SSE event types and the data encoding for binary streams (section 5.8).
const (
	SSEEventData      = "data"
	SSEEventControl   = "control"
	SSEEncodingBase64 = "base64"
)
