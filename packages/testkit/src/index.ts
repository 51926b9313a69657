/**
 * @since 0.1.0
 */
export * as CosFake from "./CosFake.js"

/**
 * @since 0.1.0
 */
export * as CosFakeServer from "./CosFakeServer.js"

/**
 * @since 0.1.0
 */
export * as Faults from "./Faults.js"

/**
 * @since 0.1.0
 */
export * as Stats from "./Stats.js"

/**
 * @since 0.1.0
 */
export * as Store from "./Store.js"

/**
 * @since 0.1.0
 */
export * as ReferenceModel from "./ReferenceModel.js"
