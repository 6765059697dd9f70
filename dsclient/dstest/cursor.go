package dstest

import (
	"math/rand/v2"
	"strconv"
	"time"
)

// cursorEpoch is where cursor intervals are counted from (the protocol's default).
var cursorEpoch = time.Date(2024, 10, 9, 0, 0, 0, 0, time.UTC)

// cursor returns the cursor for a live response: the number of the current interval, or, when
// the client echoed a cursor at or past it, the client's cursor plus a random jitter of 1 to
// 3600 seconds (at least one interval), so that cursors never go backwards.
func (h *Handler) cursor(client string) string {
	iv := h.opts.CursorInterval
	current := int64(time.Since(cursorEpoch) / iv)
	if client == "" {
		return strconv.FormatInt(current, 10)
	}
	c, err := strconv.ParseInt(client, 10, 64)
	if err != nil || c < current {
		return strconv.FormatInt(current, 10)
	}
	jitter := time.Duration(1+rand.IntN(3600)) * time.Second
	steps := max(1, int64((jitter+iv-1)/iv))
	return strconv.FormatInt(c+steps, 10)
}
