/**
 * The load benchmark's case (e): the server a user would otherwise run instead of this Worker, as small as it can
 * be. A Node HTTP server that takes the same POST /verify body and does the same StoreKit 2 check with Apple's
 * library (SignedDataVerifier.verifyAndDecodeTransaction: chain to the trusted root, bundle id, environment, app id),
 * plus the product the app claims; then answers {"complete_purchase":true}. It claims nothing and stores nothing:
 * the Worker's exactly-once claim and history are extra work the peer does not do.
 *
 * Apple's library runs at its best, with online checks on so its verified-chain cache is engaged; the OCSP answers
 * it asks for come from bench/pki.ts's local responder (only on a cache miss, i.e. once per 15 minutes).
 *
 * `node bench/peer.ts <port> <root-base64> <bundleId> <appAppleId>`; prints "listening" once up.
 */
import { createServer } from "node:http";
import { Environment, SignedDataVerifier } from "@apple/app-store-server-library";

const [port, rootBase64, bundleId, appAppleId] = process.argv.slice(2);
const verifier = new SignedDataVerifier([Buffer.from(rootBase64!, "base64")], true, Environment.PRODUCTION, bundleId!, Number(appAppleId));

interface VerifyBody {
	purchaseDetails?: { productID?: string; verificationData?: { serverVerificationData?: string; source?: string } };
}

const server = createServer((request, response) => {
	const chunks: Buffer[] = [];
	request.on("data", (chunk: Buffer) => chunks.push(chunk));
	request.on("end", async () => {
		const answer = (status: number, body: unknown) => {
			const text = JSON.stringify(body);
			response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
		};
		if (request.method !== "POST" || request.url !== "/verify") return answer(404, { error: "not found" });
		let body: VerifyBody;
		try {
			body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as VerifyBody;
		} catch {
			return answer(400, { error: "not JSON" });
		}
		const details = body.purchaseDetails;
		const jws = details?.verificationData?.serverVerificationData;
		if (details?.verificationData?.source !== "app_store" || typeof jws !== "string") return answer(400, { error: "not a StoreKit 2 transaction" });
		try {
			const transaction = await verifier.verifyAndDecodeTransaction(jws);
			if (transaction.productId !== details.productID) return answer(200, { complete_purchase: false, reason: "another product" });
			if (transaction.revocationDate !== undefined) return answer(200, { complete_purchase: false, reason: "revoked" });
			return answer(200, { complete_purchase: true });
		} catch (error) {
			return answer(200, { complete_purchase: false, reason: `does not verify (${String((error as { status?: unknown }).status ?? error)})` });
		}
	});
});
server.keepAliveTimeout = 60_000;
server.listen(Number(port), "127.0.0.1", () => process.stdout.write("listening\n"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
