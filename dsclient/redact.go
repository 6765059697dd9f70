package dsclient

import (
	"errors"
	"net/url"
	"strings"
)

// A stream URL may carry credentials, in its user info (https://user:token@host/...) or in
// query parameters. They are sent on the wire, but never shown or stored: the URL that
// [Stream.URL], every [*Error], every observer event (and so every log line, metric label and
// checkpoint key built from them) carry is the redacted one, without user info, query or
// fragment.

// displayURL returns u without user info, query and fragment.
func displayURL(u *url.URL) string {
	r := *u
	r.User = nil
	r.RawQuery, r.ForceQuery = "", false
	r.Fragment, r.RawFragment = "", ""
	return r.String()
}

// displayRaw does for a string that does not parse as a URL what displayURL does: it drops
// the query and fragment, and whatever precedes the last "@" of the authority.
func displayRaw(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	start := 0
	if i := strings.Index(raw, "//"); i >= 0 {
		start = i + 2
	}
	end := len(raw)
	if i := strings.IndexByte(raw[start:], '/'); i >= 0 {
		end = start + i
	}
	if at := strings.LastIndexByte(raw[start:end], '@'); at >= 0 {
		raw = raw[:start] + raw[start+at+1:]
	}
	return raw
}

// redactErr replaces the URL of a [*url.Error] (which the HTTP client builds from the request
// URL, query and user name included) with the redacted stream URL.
func redactErr(err error, redacted string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: redacted, Err: ue.Err}
	}
	return err
}
