package pipeline

// Permanent marks err as permanent: the message it fails is bad data, which no retry can
// fix (a record the sink rejects, a value out of range), as opposed to a transient failure of
// a sink or service that is unavailable. Under the default policy, [RetryTransient], a
// message failed with a permanent error goes to the failure handler and counts as done, while
// any other failure is retried until it succeeds. See [IsPermanent].
//
// The returned error has err's text and wraps it (errors.Is and errors.As see through it).
// Permanent returns err itself when it is already permanent, and nil for a nil err. It
// allocates one small value otherwise.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err is permanent: whether an error in its chain (followed
// through Unwrap() error and Unwrap() []error) has a method Permanent() bool that returns
// true. Such errors are those made by [Permanent], a [*PanicError] (a handler's bug, the same
// on every attempt), and the errors of other packages that mark their own bad-data errors
// with such a method without importing this one (a decode error of a producer, a row a
// database rejected). The pipeline also marks as permanent the error of a message that
// arrived failed from its producer and of a message routed to an unknown batcher, so that,
// in a [FailureHandler], IsPermanent(m.Err()) tells bad data from a transient failure under
// every policy. It returns false for nil.
func IsPermanent(err error) bool {
	for err != nil {
		if p, ok := err.(interface{ Permanent() bool }); ok && p.Permanent() {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if IsPermanent(e) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// permanentError is an error marked by [Permanent].
type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Permanent() bool { return true }
