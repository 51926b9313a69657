#!/usr/bin/env -S node --max-old-space-size=512 --max-semi-space-size=8
/**
 * The `cos-retention` executable, bundled with everything it imports by scripts/bundle.mjs into dist/bin.js. The V8
 * flags in the first line keep a purge's peak memory flat whatever the number of keys (with Node's defaults V8
 * postpones collection and peak RSS drifts upwards on long runs, at 10-20% less CPU per key: bench/purge-rss.ts
 * --binary), so nobody has to pass them; `node dist/bin.js` skips that line and runs with Node's defaults
 * (docs/daemon.md, "The binary: start-up, memory and V8 flags"). `--version` is answered before anything else is
 * loaded; every other command loads only its own subcommand (see Cli.ts).
 */
import { version } from "./version.js"

const args = process.argv.slice(2)
if (args.length === 1 && args[0] === "--version") {
  process.stdout.write(`${version}\n`)
} else {
  await import("./main.js")
}
