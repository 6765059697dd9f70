// Starts the Durable Streams reference server on a loopback port for Sluice's tests.
// Options come as one JSON object in argv[2]: {port, host, longPollTimeout, dataDir, webhooks}.
// Prints one JSON line {"url": "..."} on stdout once listening; stops when stdin closes
// or on SIGTERM/SIGINT.
import { DurableStreamTestServer } from "@durable-streams/server"

const opts = JSON.parse(process.argv[2] || "{}")
const server = new DurableStreamTestServer({
  port: opts.port ?? 0,
  host: opts.host ?? "127.0.0.1",
  longPollTimeout: opts.longPollTimeout,
  dataDir: opts.dataDir,
  webhooks: opts.webhooks ?? false,
})
const url = await server.start()
process.stdout.write(JSON.stringify({ url }) + "\n")

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  try {
    await server.stop()
  } finally {
    process.exit(0)
  }
}
process.stdin.on("end", stop)
process.stdin.on("close", stop)
process.stdin.resume()
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
