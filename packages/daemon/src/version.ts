/**
 * The package's version, read from its package.json (one directory above `src/` and `dist/` alike), so that
 * `cos-retention --version` always prints the version that was installed.
 */
import { readFileSync } from "node:fs"

export const version: string =
  (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { readonly version: string })
    .version
