/**
 * Reads a legacy App Store app receipt (Apple's receipt fields: https://developer.apple.com/documentation/appstorereceipts): the bundle id and the in-app purchases it lists.
 *
 * This PARSES ONLY. The receipt's PKCS#7 signature is not checked, so nothing read here proves a purchase: a
 * client can write any receipt it likes. Use what it says only to ask Apple (App Store Server API, or
 * verifyReceipt), and grant on Apple's answer.
 *
 * Receipts arrive as BER: Xcode and older devices write indefinite lengths and wrap the content in a constructed
 * OCTET STRING; both are read here.
 */
import { base64ToBytes, contextTag, DerCursor, DerError, readInner, readOid, readSingle, readString, readUnsigned, Tag, type Tlv } from "./der";
import { AppleReceiptError } from "./errors";

export interface ReceiptPurchase {
	transactionId: string;
	/** Absent in Xcode receipts. */
	originalTransactionId: string | null;
	productId: string;
	quantity: number;
	/** Milliseconds since the epoch. */
	purchaseDate: number | null;
	originalPurchaseDate: number | null;
	/** Subscriptions only. */
	expiresDate: number | null;
	/** Decimal: Apple's INTEGER can exceed what a double holds exactly. */
	webOrderLineItemId: string | null;
}

export interface AppReceipt {
	bundleId: string;
	/** "Production", "ProductionSandbox", "Xcode", … when present. */
	receiptType: string | null;
	appAppleId: number | null;
	inApp: ReceiptPurchase[];
}

const PKCS7_SIGNED_DATA = "1.2.840.113549.1.7.2";
const PKCS7_DATA = "1.2.840.113549.1.7.1";

const RECEIPT_TYPE = 0;
const APP_APPLE_ID = 1;
const BUNDLE_ID = 2;
const IN_APP = 17;

/** Parses a base64 app receipt; anything that is not one is an AppleReceiptError. */
export function parseAppReceipt(base64: string): AppReceipt {
	try {
		return readReceipt(base64ToBytes(base64.replace(/\s+/g, "")));
	} catch (error) {
		if (error instanceof DerError) throw new AppleReceiptError(`not an app receipt: ${error.message}`);
		throw error;
	}
}

function readReceipt(bytes: Uint8Array): AppReceipt {
	// ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT SignedData }
	const contentInfo = readSingle(bytes, 0, bytes.length, Tag.SEQUENCE);
	const info = DerCursor.within(bytes, contentInfo);
	if (readOid(bytes, info.next(Tag.OID)) !== PKCS7_SIGNED_DATA) throw new DerError("not PKCS#7 SignedData", contentInfo.contentStart);
	const signedData = DerCursor.within(bytes, readInner(bytes, info.next(contextTag(0)), Tag.SEQUENCE));
	// SignedData ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo SEQUENCE, … }
	signedData.next(Tag.INTEGER);
	signedData.next(Tag.SET);
	const encapsulated = DerCursor.within(bytes, signedData.next(Tag.SEQUENCE));
	if (readOid(bytes, encapsulated.next(Tag.OID)) !== PKCS7_DATA) throw new DerError("content is not PKCS#7 data", 0);
	let payload = octetStringValue(bytes, readInner(bytes, encapsulated.next(contextTag(0))));
	// Xcode wraps the attributes in one more OCTET STRING; Apple's own ReceiptUtility unwraps it the same way.
	if (payload[0] === Tag.OCTET_STRING || payload[0] === Tag.CONSTRUCTED_OCTET_STRING) payload = octetStringValue(payload, readSingle(payload));
	return readAttributes(payload);
}

function readAttributes(payload: Uint8Array): AppReceipt {
	const receipt: AppReceipt = { bundleId: "", receiptType: null, appAppleId: null, inApp: [] };
	const seen = new Set<number>();
	for (const [type, value] of attributes(payload)) {
		if (type === IN_APP) {
			receipt.inApp.push(readPurchase(payload.subarray(value.contentStart, value.contentEnd)));
			continue;
		}
		if (type !== RECEIPT_TYPE && type !== APP_APPLE_ID && type !== BUNDLE_ID) continue;
		// Two bundle ids could be read two ways; a receipt with either is not one Apple wrote.
		if (seen.has(type)) throw new DerError(`receipt attribute ${type} appears twice`, value.start);
		seen.add(type);
		const inner = readInner(payload, value);
		if (type === RECEIPT_TYPE) receipt.receiptType = readString(payload, inner);
		else if (type === APP_APPLE_ID) receipt.appAppleId = readUnsigned(payload, inner);
		else receipt.bundleId = readString(payload, inner);
	}
	if (!seen.has(BUNDLE_ID)) throw new DerError("receipt has no bundle id (attribute 2)", 0);
	return receipt;
}

function readPurchase(record: Uint8Array): ReceiptPurchase {
	const fields = new Map<number, Tlv>();
	for (const [type, value] of attributes(record)) {
		if (fields.has(type)) throw new DerError(`in-app attribute ${type} appears twice`, value.start);
		fields.set(type, readInner(record, value));
	}
	const text = (type: number) => {
		const tlv = fields.get(type);
		return tlv ? readString(record, tlv) : null;
	};
	const date = (type: number) => rfc3339(text(type), type);
	const transactionId = text(1703);
	const productId = text(1702);
	if (!transactionId || !productId) throw new DerError("in-app purchase without transaction id (1703) or product id (1702)", 0);
	const quantity = fields.get(1701);
	const webOrderLineItemId = fields.get(1711);
	return {
		transactionId,
		originalTransactionId: text(1705),
		productId,
		quantity: quantity ? readUnsigned(record, quantity) : 1,
		purchaseDate: date(1704),
		originalPurchaseDate: date(1706),
		expiresDate: date(1708),
		webOrderLineItemId: webOrderLineItemId ? decimal(record, webOrderLineItemId) : null,
	};
}

/** SET OF ReceiptAttribute ::= SEQUENCE { type INTEGER, version INTEGER, value OCTET STRING } */
function* attributes(bytes: Uint8Array): Generator<[type: number, value: Tlv]> {
	const set = readSingle(bytes);
	if (set.tag !== Tag.SET) throw new DerError("receipt attributes are not a SET", 0);
	const list = DerCursor.within(bytes, set);
	while (!list.done) {
		const attribute = DerCursor.within(bytes, list.next(Tag.SEQUENCE));
		const type = readUnsigned(bytes, attribute.next(Tag.INTEGER));
		attribute.next(Tag.INTEGER); // version
		const value = attribute.next(Tag.OCTET_STRING);
		attribute.finish();
		yield [type, value];
	}
}

/** An OCTET STRING's bytes; BER's constructed form is a series of segments, joined here. */
function octetStringValue(bytes: Uint8Array, tlv: Tlv, depth = 0): Uint8Array {
	if (tlv.tag === Tag.OCTET_STRING) return bytes.subarray(tlv.contentStart, tlv.contentEnd);
	if (tlv.tag !== Tag.CONSTRUCTED_OCTET_STRING || depth > 4) throw new DerError("expected an OCTET STRING", tlv.start);
	const segments: Uint8Array[] = [];
	const cursor = DerCursor.within(bytes, tlv);
	while (!cursor.done) segments.push(octetStringValue(bytes, cursor.next(), depth + 1));
	if (segments.length === 1) return segments[0]!;
	const joined = new Uint8Array(segments.reduce((sum, segment) => sum + segment.length, 0));
	let at = 0;
	for (const segment of segments) {
		joined.set(segment, at);
		at += segment.length;
	}
	return joined;
}

/** Receipt dates are IA5String RFC 3339 in UTC; Apple writes an empty one where a date does not apply. */
function rfc3339(text: string | null, type: number): number | null {
	if (text === null || text === "") return null;
	const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3})\d*)?Z$/.exec(text);
	if (!match) throw new DerError(`in-app attribute ${type} is not an RFC 3339 UTC date`, 0);
	const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
	const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, Number((match[7] ?? "0").padEnd(3, "0"))));
	// setUTCFullYear, not Date.UTC's year: Date.UTC reads years 0-99 as 1900-1999.
	date.setUTCFullYear(year, month - 1, day);
	// A date that does not exist (month 13, February 31) rolls over in Date: refuse it instead.
	if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 60) {
		throw new DerError(`in-app attribute ${type} is not a valid date`, 0);
	}
	return date.getTime();
}

function decimal(bytes: Uint8Array, tlv: Tlv): string {
	if (tlv.tag !== Tag.INTEGER || tlv.contentEnd === tlv.contentStart || (bytes[tlv.contentStart]! & 0x80) !== 0) {
		throw new DerError("expected a non-negative INTEGER", tlv.start);
	}
	let value = 0n;
	for (let i = tlv.contentStart; i < tlv.contentEnd; i++) value = (value << 8n) | BigInt(bytes[i]!);
	return value.toString();
}
