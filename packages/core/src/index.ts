export * as CosClient from "./CosClient.js"
export * as CosError from "./CosError.js"
export * as Credentials from "./Credentials.js"
export * as Signer from "./Signer.js"
