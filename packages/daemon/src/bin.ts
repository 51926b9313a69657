#!/usr/bin/env -S node --max-old-space-size=512 --max-semi-space-size=8
/**
 * The `cos-retention` executable. The V8 flags in the first line keep a purge's peak memory flat whatever the number
 * of keys (with Node's defaults V8 postpones collection and peak RSS drifts upwards on long runs, bench/purge-rss.ts),
 * so nobody has to pass them. `--version` is answered before anything else is loaded; every other command loads only
 * its own subcommand (see Cli.ts).
 */
import { version } from "./version.js"

const args = process.argv.slice(2)
if (args.length === 1 && args[0] === "--version") {
  process.stdout.write(`${version}\n`)
} else {
  await import("./main.js")
}
