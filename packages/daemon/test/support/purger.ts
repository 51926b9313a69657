/** The Purger over the in-process fake COS (the fake is exposed too, to seed it and read its stats). */
import { CosFake } from "@effect-cos/testkit"
import * as Layer from "effect/Layer"
import { Purger } from "../../src/Purger.js"

export const testPurger = (options?: CosFake.Options): Layer.Layer<Purger | CosFake.CosFake> =>
  Purger.DefaultWithoutDependencies.pipe(Layer.provideMerge(CosFake.layer(options)))
