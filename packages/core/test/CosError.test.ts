/**
 * CosServiceError.reason: one classification from code and status, and the sets the engine, the client, the daemon
 * and the CLI act on (retryable, throttled, fatal, configuration) derived from it.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  CosCredentialsError,
  CosInvalidRequest,
  CosServiceError,
  CosTransportError,
  isConfiguration,
  isFatal,
  isRetryable,
  isRetryableCode,
  isThrottle,
  reasonOf
} from "../src/CosError.js"

const error = (status: number, code: string, cosMessage = "m") =>
  new CosServiceError({ operation: "CosClient.deleteObjects", status, code, cosMessage })

describe("CosServiceError.reason", () => {
  const table: ReadonlyArray<readonly [number, string, string, string]> = [
    [503, "SlowDown", "", "Throttled"],
    [503, "ServiceUnavailable", "", "Throttled"],
    [200, "SlowDown", "", "Throttled"],
    [403, "RequestTimeTooSkewed", "", "ClockSkew"],
    [403, "AccessDenied", "Request has expired", "ClockSkew"],
    [403, "AccessDenied", "", "AccessDenied"],
    [403, "SomethingNew", "", "AccessDenied"],
    [403, "InvalidAccessKeyId", "", "InvalidCredentials"],
    [403, "SignatureDoesNotMatch", "", "InvalidCredentials"],
    [404, "NoSuchBucket", "", "NoSuchBucket"],
    [400, "InvalidBucketName", "", "NoSuchBucket"],
    [404, "NoSuchKey", "", "NoSuchKey"],
    [500, "InternalError", "", "Server"],
    [502, "BadGateway", "", "Server"],
    [400, "RequestTimeout", "", "Server"],
    [400, "InvalidArgument", "", "Other"],
    [412, "PreconditionFailed", "", "Other"]
  ]
  it("is computed from code and status", () => {
    for (const [status, code, message, reason] of table) {
      assert.strictEqual(error(status, code, message).reason, reason, `${status} ${code} ${message}`)
      assert.strictEqual(reasonOf(code, status, message), reason)
    }
  })

  it("derives throttled, retryable, fatal and configuration", () => {
    const slow = error(503, "ServiceUnavailable")
    assert.isTrue(slow.throttled && slow.retryable && isThrottle(slow) && isRetryable(slow))
    assert.isFalse(slow.fatal || slow.configuration)
    const denied = error(403, "AccessDenied")
    assert.isTrue(denied.fatal && isFatal(denied))
    assert.isFalse(denied.retryable || denied.throttled || denied.configuration)
    const badKey = error(403, "InvalidAccessKeyId")
    assert.isTrue(badKey.fatal && badKey.configuration && isConfiguration(badKey))
    const noBucket = error(404, "NoSuchBucket")
    assert.isTrue(noBucket.fatal && noBucket.configuration)
    const skew = error(403, "RequestTimeTooSkewed")
    assert.isTrue(skew.fatal)
    assert.isFalse(skew.configuration || skew.retryable)
    const server = error(500, "InternalError")
    assert.isTrue(server.retryable)
    assert.isFalse(server.throttled || server.fatal)
    const noKey = error(404, "NoSuchKey")
    assert.isFalse(noKey.retryable || noKey.fatal || noKey.configuration)
  })

  it("classifies per-key batch error codes (no status of their own) the same way", () => {
    assert.isTrue(isRetryableCode("SlowDown"))
    assert.isTrue(isRetryableCode("InternalError"))
    assert.isTrue(isRetryableCode("ServiceUnavailable"))
    assert.isFalse(isRetryableCode("AccessDenied"))
    assert.isFalse(isRetryableCode("NoSuchKey"))
  })

  it("covers the other error kinds in the predicates", () => {
    const credentials = new CosCredentialsError({ reason: "COS_SECRET_ID is not set" })
    assert.isTrue(isFatal(credentials) && isConfiguration(credentials))
    const refused = new CosInvalidRequest({ operation: "Deletion.purge", reason: "a prefix is required" })
    assert.isTrue(isConfiguration(refused))
    assert.isFalse(isFatal(refused))
    const transport = new CosTransportError({ operation: "x", reason: "ECONNRESET" })
    assert.isTrue(isRetryable(transport))
    assert.isFalse(isThrottle(transport) || isFatal(transport) || isConfiguration(transport))
  })
})
