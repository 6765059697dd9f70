package dsclient

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"github.com/sluice-go/sluice/internal/protocol"
)

// maxErrorBodyBytes bounds what is read of an error response's body.
const maxErrorBodyBytes = 4 << 10

// headerTrue reports whether a boolean protocol header is present with value "true"
// (case-insensitive); any other value counts as absent (protocol section 4.1).
func headerTrue(h http.Header, name string) bool {
	return strings.EqualFold(strings.TrimSpace(h.Get(name)), "true")
}

func headerInt(h http.Header, name string) (int64, bool) {
	v := h.Get(name)
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n, err == nil
}

// isJSONType reports whether a content type is application/json (parameters ignored).
func isJSONType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), protocol.ContentTypeJSON)
}

// isTextType reports whether a content type is text/*.
func isTextType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.TrimSpace(mt)
	return len(mt) >= 5 && strings.EqualFold(mt[:5], "text/")
}

func bytesReader(b []byte) io.Reader {
	if len(b) == 0 {
		return http.NoBody
	}
	return bytes.NewReader(b)
}

// statusError maps a non-2xx response to an *Error by the operation and the headers, and
// closes the body.
func (s *Stream) statusError(r *request, resp *http.Response) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	resp.Body.Close()
	h := resp.Header
	e := &Error{Op: r.op, URL: s.url, Status: resp.StatusCode, Offset: r.offset, Detail: detail(body)}
	switch code := resp.StatusCode; {
	case code == http.StatusBadRequest:
		e.Kind = ErrBadRequest
	case code == http.StatusUnauthorized:
		e.Kind = ErrUnauthorized
	case code == http.StatusForbidden:
		if ep, ok := headerInt(h, protocol.HeaderProducerEpoch); ok && hasHeader(r, protocol.HeaderProducerID) {
			e.Kind, e.Epoch = ErrStaleEpoch, ep
		} else {
			e.Kind = ErrForbidden
		}
	case code == http.StatusNotFound:
		e.Kind = ErrNotFound
	case code == http.StatusConflict:
		switch {
		case headerTrue(h, protocol.HeaderClosed):
			e.Kind, e.NextOffset = ErrStreamClosed, Offset(h.Get(protocol.HeaderNextOffset))
		case h.Get(protocol.HeaderExpectedSeq) != "":
			e.Kind = ErrSequenceGap
			e.ExpectedSeq, _ = headerInt(h, protocol.HeaderExpectedSeq)
			e.ReceivedSeq, _ = headerInt(h, protocol.HeaderReceivedSeq)
		case r.op == OpAppend && hasHeader(r, protocol.HeaderSeq) && !strings.Contains(strings.ToLower(e.Detail), "content-type"):
			e.Kind = ErrSequenceConflict
		default:
			e.Kind = ErrConflict
		}
	case code == http.StatusGone:
		e.Kind, e.EarliestOffset = ErrGone, Offset(h.Get(protocol.HeaderEarliestOffset))
	case code == http.StatusRequestEntityTooLarge:
		e.Kind = ErrPayloadTooLarge
	case code == http.StatusTooManyRequests:
		e.Kind, e.RetryAfter = ErrRateLimited, parseRetryAfter(h)
	case code >= 500:
		e.Kind, e.RetryAfter = ErrServerError, parseRetryAfter(h)
	default:
		e.Kind = ErrUnexpectedStatus
	}
	return e
}

func hasHeader(r *request, name string) bool {
	for _, h := range r.header {
		if strings.EqualFold(h.k, name) {
			return true
		}
	}
	return false
}

// detail turns the start of an error body into one printable line.
func detail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if !utf8.ValidString(s) {
		return ""
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// sendTrace records whether a request was written, so that a failed non-idempotent request
// is retried only when it provably did not reach the server.
type sendTrace struct {
	wrote atomic.Bool
}

func withSendTrace(req *http.Request) (*http.Request, *sendTrace) {
	t := &sendTrace{}
	ct := &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				t.wrote.Store(true)
			}
		},
	}
	return req.WithContext(httptrace.WithClientTrace(req.Context(), ct)), t
}

// notSent reports whether the request was never completely written.
func (t *sendTrace) notSent() bool { return t != nil && !t.wrote.Load() }
