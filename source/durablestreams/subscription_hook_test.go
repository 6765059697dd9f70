package durablestreams

// SetHeartbeatHook makes every claim runner call h before each heartbeat (nil removes it),
// for tests that pause a worker's lease keeping as a stopped process would be paused.
func SetHeartbeatHook(h func(subscription, worker string)) {
	if h == nil {
		testHookHeartbeat.Store(nil)
		return
	}
	testHookHeartbeat.Store(&h)
}
