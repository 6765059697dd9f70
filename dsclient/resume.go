package dsclient

import (
	"io"
)

// recover handles a failed read of the chunk: a transient failure is retried — the chunk is
// asked for again from its start, after the read's backoff, skipping what was delivered —
// until it succeeds (nil) or the policy gives up; any other failure fails the chunk. It
// returns the chunk's final error.
func (c *Chunk) recover(cause error) error {
	r := c.r
	e := c.wrap(cause)
	for {
		if !r.transient(e) {
			return c.fail(e)
		}
		c.closeBody()
		c.resumed++
		if obs := r.s.cfg.observer; obs != nil {
			obs.Reconnect(ReconnectEvent{URL: r.s.url, Live: r.opts.Live, Offset: c.info.StartOffset, Err: e})
		}
		if err := r.rt.retry(r.ctx, e); err != nil {
			return c.fail(err)
		}
		err := c.reopen()
		if err == nil {
			return nil
		}
		e = c.wrap(err)
	}
}

// continueRead continues a failed chunk, for [ChunkReader.Next]: the caller chose to go on,
// so the read starts a fresh round of attempts.
func (c *Chunk) continueRead() error {
	r := c.r
	r.rt.progress()
	if err := c.reopen(); err != nil {
		c.err = c.wrap(err)
		if err := c.recover(c.err); err != nil {
			return err
		}
	}
	return nil
}

// reopen asks for the chunk's start offset again, with a plain request, and passes over
// what was delivered. An SSE batch is asked for this way too; the SSE connection, which no
// longer matches, is dropped (the reader reconnects after the chunk).
func (c *Chunk) reopen() error {
	r := c.r
	if c.mem && r.conn != nil {
		r.conn.close()
		r.conn = nil
	}
	resp, err := r.s.doWith(r.ctx, r.readRequest(c.info.StartOffset, ""), r.rt)
	if err != nil {
		return err
	}
	if err := c.attach(resp); err != nil {
		return err
	}
	c.state, c.err = chunkOpen, nil
	return c.skip()
}

// skip passes over the items or bytes delivered before the chunk was asked for again.
func (c *Chunk) skip() error {
	r := c.r
	shorter := func() error {
		c.closeBody()
		return &Error{Op: OpRead, URL: r.s.url, Kind: ErrParse, Offset: c.info.StartOffset, BytePos: -1,
			Detail: "the response asked for again is shorter than what was read of it"}
	}
	if c.mode == modeBytes || (!c.json && c.nbytes > 0) {
		if c.mem {
			if int64(len(c.data)) < c.nbytes {
				return shorter()
			}
			c.dpos = int(c.nbytes)
			return nil
		}
		n, err := io.CopyN(io.Discard, c.src, c.nbytes)
		if err == io.EOF && n < c.nbytes {
			return shorter()
		}
		return err
	}
	for range c.items {
		if _, err := c.sc.next(); err != nil {
			if err == io.EOF {
				return shorter()
			}
			return err
		}
	}
	return nil
}
