/**
 * A `retention.yaml` written for a test into a temporary folder that is removed when the test's scope closes, and
 * read back as the daemon reads it.
 */
import { CosFake } from "@effect-cos/testkit"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as Config from "../../src/Config.js"

export interface WrittenConfig {
  /** The temporary folder (for a state file beside the configuration). */
  readonly dir: string
  /** The `retention.yaml` in it. */
  readonly path: string
}

/** Writes `retention.yaml` with the text `yaml` gives for the folder, in a folder `cos-retention-<name>-…`. */
export const writeConfig = (name: string, yaml: (dir: string) => string) =>
  Effect.gen(function*() {
    const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), `cos-retention-${name}-`))
    yield* Effect.addFinalizer(() => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true })))
    const path = NodePath.join(dir, "retention.yaml")
    NodeFs.writeFileSync(path, yaml(dir))
    const written: WrittenConfig = { dir, path }
    return written
  })

/** The settings in a written configuration, parsed as `cos-retention --config` parses them. */
export const readConfig = (config: WrittenConfig): Config.RetentionConfig =>
  Either.getOrThrow(
    Config.parse(NodeFs.readFileSync(config.path, "utf8"), { source: config.path, baseDir: config.dir })
  )

/**
 * Writes the `retention.yaml` of a local daemon: the fake at `endpoint`, the state in `state.db` beside the file, no
 * HTTP server, then `rules`, the YAML lines under `rules:`.
 */
export const writeLocalConfig = (name: string, endpoint: string, rules: string) =>
  writeConfig(
    name,
    (dir) =>
      `cos: { region: ${CosFake.testRegion}, endpoint: ${endpoint} }
state: ${NodePath.join(dir, "state.db")}
http: { enabled: false }
rules:
${rules}`
  )
