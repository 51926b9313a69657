// Peak memory of `cos-retention purge --keys-from` does not grow with the length of the list: the CLI as shipped (the
// root package.json's node flags) deletes generated lists of 1,000,000 and 10,000,000 keys, from a file and from
// standard input (which is spooled to a temporary file while it is checked), against the fake COS in its own process.
// The peak RSS of each CLI process is its VmHWM from /proc; the difference between the longest and the shortest list
// must stay under 64 MB. The keys do not exist in the fake (COS answers a batch delete of a missing key as deleted),
// so nothing needs seeding and the fake stays small.
//
//   node --conditions=source --import tsx bench/keys-from-rss.ts [--sizes 1000000,10000000] [--sources file,stdin]
import { spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as Path from "node:path"
import { fakeCredentials, fakePurgeArgs, flag, root, shippedNodeFlags, startFake, table } from "./purge-harness.js"

const sizes = flag("sizes", "1000000,10000000").split(",").map(Number)
const sources = flag("sources", "file,stdin").split(",") as Array<"file" | "stdin">
const limitMb = 64

/** A list of `n` keys, one per line, written in large chunks. */
const writeList = (path: string, n: number) => {
  const fd = NodeFs.openSync(path, "w")
  try {
    const step = 100_000
    for (let i = 0; i < n; i += step) {
      let text = ""
      for (let j = i; j < Math.min(n, i + step); j++) text += `keys-from/${String(j).padStart(8, "0")}\n`
      NodeFs.writeSync(fd, text)
    }
  } finally {
    NodeFs.closeSync(fd)
  }
}

/** Peak RSS of a live process, MB (VmHWM, the kernel's high-water mark). */
const peakRssMb = (pid: number): number => {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(NodeFs.readFileSync(`/proc/${pid}/status`, "utf8"))
    return m === null ? Number.NaN : Number(m[1]) / 1024
  } catch {
    return Number.NaN
  }
}

interface Result {
  readonly keys: number
  readonly source: string
  readonly deleted: number
  readonly requests: number
  readonly seconds: number
  readonly peakRssMb: number
}

const runCli = (endpoint: string, list: string, keys: number, source: "file" | "stdin") =>
  new Promise<Result>((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(
      process.execPath,
      [
        ...shippedNodeFlags,
        "--conditions=source",
        "--import",
        "tsx",
        "packages/daemon/src/bin.ts",
        ...fakePurgeArgs(endpoint),
        "--keys-from",
        source === "file" ? list : "-",
        "--yes",
        "--json"
      ],
      {
        cwd: root,
        env: { ...process.env, COS_SECRET_ID: fakeCredentials.secretId, COS_SECRET_KEY: fakeCredentials.secretKey },
        stdio: [source === "file" ? "ignore" : "pipe", "pipe", "inherit"]
      }
    )
    if (source === "stdin") NodeFs.createReadStream(list).pipe(child.stdin!)
    let peak = 0
    // VmHWM is a high-water mark: reading it often enough to catch the last value before exit is all it takes.
    const timer = setInterval(() => (peak = Math.max(peak, peakRssMb(child.pid!) || 0)), 100)
    let out = ""
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()))
    child.on("error", reject)
    child.on("exit", () => clearInterval(timer))
    child.on("close", (code) => {
      try {
        const lines = out.trim().split("\n")
        const s = JSON.parse(lines[lines.length - 1]!) as { deleted: number; requests: number }
        if (code !== 0) throw new Error(`exit ${code}`)
        resolve({
          keys,
          source,
          deleted: s.deleted,
          requests: s.requests,
          seconds: (performance.now() - t0) / 1000,
          peakRssMb: peak
        })
      } catch (e) {
        reject(new Error(`purge --keys-from (${source}, ${keys}) failed (${String(e)}): ${out.slice(-2000)}`))
      }
    })
  })

const main = async () => {
  const dir = NodeFs.mkdtempSync(Path.join(NodeOs.tmpdir(), "keys-from-bench-"))
  const server = await startFake([])
  const results: Array<Result> = []
  try {
    for (const keys of sizes) {
      const list = Path.join(dir, `keys-${keys}.txt`)
      writeList(list, keys)
      for (const source of sources) results.push(await runCli(server.url, list, keys, source))
      NodeFs.rmSync(list)
    }
  } finally {
    await server.stop()
    NodeFs.rmSync(dir, { recursive: true, force: true })
  }
  console.log(`\n### peak RSS of cos-retention purge --keys-from by list length (node ${shippedNodeFlags.join(" ")})\n`)
  console.log(table(
    ["keys", "source", "deleted", "requests", "seconds", "keys/s", "peak RSS MB"],
    results.map((r) => [
      r.keys,
      r.source,
      r.deleted,
      r.requests,
      r.seconds.toFixed(1),
      Math.round(r.keys / r.seconds),
      r.peakRssMb.toFixed(0)
    ])
  ))
  let ok = true
  for (const source of sources) {
    const rs = results.filter((r) => r.source === source)
    const diff = rs[rs.length - 1]!.peakRssMb - rs[0]!.peakRssMb
    console.log(
      `${source}: peak RSS difference ${rs[rs.length - 1]!.keys} vs ${rs[0]!.keys} keys: ${diff.toFixed(1)} MB ` +
        `(limit ${limitMb} MB): ${diff < limitMb ? "OK" : "TOO MUCH"}`
    )
    if (diff >= limitMb) ok = false
  }
  if (results.some((r) => r.deleted !== r.keys)) {
    console.log("not every key was reported deleted")
    ok = false
  }
  if (!ok) process.exitCode = 1
}

await main()
