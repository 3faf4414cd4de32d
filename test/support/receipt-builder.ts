/**
 * Legacy App Store app receipts (https://developer.apple.com/documentation/appstorereceipts), built for tests and for the store emulator: a PKCS#7 SignedData
 * whose content is the SET of receipt attributes, in-app purchases as attribute 17. Nothing signs it (the
 * signerInfos are empty): only Apple, or the emulator that issued the bytes, can vouch for a receipt anyway.
 * Plain TypeScript, synchronous, so it runs in Node, workerd and the emulator bundle alike.
 */
import { bytesToBase64 } from "./keys.ts";
import { ia5String, indefinite, integer, octetString, oid, sequence, set, tlv, utf8String, type Bytes } from "./der-writer.ts";

export interface ReceiptInApp {
	transactionId: string;
	originalTransactionId?: string;
	productId: string;
	quantity?: number;
	/** Milliseconds since the epoch, written as RFC 3339 as Apple does. */
	purchaseDate?: number;
	originalPurchaseDate?: number;
	expiresDate?: number;
	/** Decimal; Apple writes it as an INTEGER. */
	webOrderLineItemId?: string;
}

export interface ReceiptSpec {
	bundleId: string;
	environment?: "Production" | "Sandbox" | "Xcode";
	appAppleId?: number;
	inApp?: ReceiptInApp[];
	/**
	 * "ber": indefinite lengths (`30 80 … 00 00`) around the container, as Xcode and older devices write it.
	 * Default: "ber" for Xcode receipts, "der" otherwise.
	 */
	encoding?: "der" | "ber";
	/**
	 * Xcode's extra wrap: the content as a constructed OCTET STRING around the OCTET STRING that holds the
	 * attributes. Default: on for Xcode receipts.
	 */
	xcodeWrap?: boolean;
	/** Extra top-level attributes, for shapes the fields above do not cover: [type, DER value]. */
	extraAttributes?: [type: number, value: Uint8Array][];
}

const PKCS7_SIGNED_DATA = "1.2.840.113549.1.7.2";
const PKCS7_DATA = "1.2.840.113549.1.7.1";
const SHA256 = "2.16.840.1.101.3.4.2.1";

/** A receipt as the device would send it: base64 of the PKCS#7 bytes. */
export function buildAppReceipt(spec: ReceiptSpec): string {
	return bytesToBase64(buildAppReceiptBytes(spec));
}

export function buildAppReceiptBytes(spec: ReceiptSpec): Bytes {
	const xcode = spec.environment === "Xcode";
	const ber = (spec.encoding ?? (xcode ? "ber" : "der")) === "ber";
	const constructed = ber ? indefinite : tlv;
	const payload = receiptPayload(spec);
	const content = (spec.xcodeWrap ?? xcode) ? constructed(0x24, octetString(payload)) : octetString(payload);
	const signedData = constructed(
		0x30,
		integer(1),
		set(sequence(oid(SHA256))),
		constructed(0x30, oid(PKCS7_DATA), constructed(0xa0, content)),
		set(),
	);
	return constructed(0x30, oid(PKCS7_SIGNED_DATA), constructed(0xa0, signedData));
}

/** ReceiptAttribute ::= SEQUENCE { type INTEGER, version INTEGER, value OCTET STRING (holding DER) } */
function attribute(type: number, value: Uint8Array): Bytes {
	return sequence(integer(type), integer(1), octetString(value));
}

function rfc3339(ms: number): Bytes {
	return ia5String(new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z"));
}

function receiptPayload(spec: ReceiptSpec): Bytes {
	const receiptType = spec.environment === "Sandbox" ? "ProductionSandbox" : (spec.environment ?? "Production");
	return set(
		attribute(0, utf8String(receiptType)),
		...(spec.appAppleId === undefined ? [] : [attribute(1, integer(spec.appAppleId))]),
		attribute(2, utf8String(spec.bundleId)),
		attribute(3, utf8String("1")),
		attribute(12, rfc3339(Date.now())),
		attribute(19, utf8String("1.0")),
		...(spec.extraAttributes ?? []).map(([type, value]) => attribute(type, value)),
		...(spec.inApp ?? []).map((purchase) => attribute(17, inAppPayload(purchase))),
	);
}

function inAppPayload(purchase: ReceiptInApp): Bytes {
	const optional = (type: number, value: Uint8Array | undefined) => (value === undefined ? [] : [attribute(type, value)]);
	const date = (ms: number | undefined) => (ms === undefined ? undefined : rfc3339(ms));
	return set(
		attribute(1701, integer(purchase.quantity ?? 1)),
		attribute(1702, utf8String(purchase.productId)),
		attribute(1703, utf8String(purchase.transactionId)),
		...optional(1704, date(purchase.purchaseDate)),
		...optional(1705, purchase.originalTransactionId === undefined ? undefined : utf8String(purchase.originalTransactionId)),
		...optional(1706, date(purchase.originalPurchaseDate)),
		...optional(1708, date(purchase.expiresDate)),
		...optional(1711, purchase.webOrderLineItemId === undefined ? undefined : integer(decimalBytes(purchase.webOrderLineItemId))),
	);
}

/** Unsigned big-endian bytes of a decimal string too long for a double to hold exactly. */
function decimalBytes(decimal: string): Bytes {
	let value = BigInt(decimal);
	const bytes: number[] = [];
	do {
		bytes.unshift(Number(value & 0xffn));
		value >>= 8n;
	} while (value > 0n);
	return Uint8Array.from(bytes);
}
