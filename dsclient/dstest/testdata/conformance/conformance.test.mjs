// Runs the official Durable Streams server conformance suite against the server at
// DSTEST_URL (run.sh starts dstest-server and sets it).
//
// Every case runs, the subscription cases included (subscriptions: true): dstest serves the
// reserved __ds subscription APIs (PROTOCOL.md sections 6 and 7) with webhooks enabled.
import { runConformanceTests } from "@durable-streams/server-conformance-tests"

const baseUrl = process.env.DSTEST_URL
if (!baseUrl) {
  throw new Error("DSTEST_URL is not set: run this suite through run.sh")
}

runConformanceTests({
  baseUrl,
  longPollTimeoutMs: Number(process.env.DSTEST_LONG_POLL_MS ?? "2000"),
  subscriptions: true,
})
