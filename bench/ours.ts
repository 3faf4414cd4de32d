/** Our verifier alone, bundled by bench/run.ts for the first-call processes, so nothing else is loaded beside it. */
export { clearChainCache } from "../src/apple/chain";
export { createTrustStore } from "../src/apple/roots";
export { verifyAppleTransaction } from "../src/apple/signed-data";
