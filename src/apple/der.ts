/**
 * A minimal DER/BER reader: just the ASN.1 that X.509 certificates and PKCS#7 app receipts use.
 *
 * Why not a library: pkijs and @peculiar/asn1-x509 both sit on asn1js, a schema-driven parser that builds an object
 * for every field of every certificate, while the verifier needs a dozen fields from three certificate shapes and
 * one receipt shape. This reader has no dependencies, never copies input bytes (values are subarrays or offsets),
 * and keeps the whole verifier (this file, x509, chain, roots, signed-data, receipt) small: `npm run bench` reports
 * its size. What it does not handle (high tag numbers, lengths of 4 GiB and more) it refuses, not guesses at.
 *
 * Every read is bounds-checked against its enclosing element and every failure is a DerError, so callers can turn
 * any malformed input into their own typed refusal with one `instanceof`.
 */

/** Bytes backed by a plain ArrayBuffer, as WebCrypto's types want them (Node's lib refuses ArrayBufferLike). */
export type Bytes = Uint8Array<ArrayBuffer>;

export class DerError extends Error {
	constructor(
		message: string,
		readonly offset: number,
	) {
		super(`${message} (at byte ${offset})`);
		this.name = "DerError";
	}
}

/** Identifier octets of the universal types we read (class, constructed bit and number in one byte). */
export const Tag = {
	BOOLEAN: 0x01,
	INTEGER: 0x02,
	BIT_STRING: 0x03,
	OCTET_STRING: 0x04,
	NULL: 0x05,
	OID: 0x06,
	UTF8_STRING: 0x0c,
	PRINTABLE_STRING: 0x13,
	IA5_STRING: 0x16,
	UTC_TIME: 0x17,
	GENERALIZED_TIME: 0x18,
	SEQUENCE: 0x30,
	SET: 0x31,
	/** BER's constructed form of OCTET STRING: a series of OCTET STRING segments to be concatenated. */
	CONSTRUCTED_OCTET_STRING: 0x24,
} as const;

/** `[n]` in context-specific class; EXPLICIT tags and SEQUENCE-valued IMPLICIT ones are constructed. */
export function contextTag(n: number, constructed = true): number {
	return 0x80 | (constructed ? 0x20 : 0) | n;
}

/** One element: offsets into the buffer it was read from. */
export interface Tlv {
	readonly tag: number;
	readonly start: number;
	readonly contentStart: number;
	/** Exclusive; for an indefinite length this is where the end-of-contents octets begin. */
	readonly contentEnd: number;
	/** Exclusive; after the end-of-contents octets for an indefinite length. */
	readonly end: number;
}

/**
 * Indefinite lengths make finding an element's end recursive; a bound on nesting keeps a hostile `30 80 30 80 …`
 * from exhausting the stack. Real receipts nest about ten deep.
 */
const MAX_INDEFINITE_DEPTH = 32;

/** Reads the element at `offset`, which must end by `limit` (its parent's content end). */
export function readTlv(bytes: Uint8Array, offset = 0, limit: number = bytes.length, depth = 0): Tlv {
	if (offset >= limit) throw new DerError("unexpected end of data", offset);
	const tag = bytes[offset]!;
	if (tag === 0x00) throw new DerError("end-of-contents marker outside an indefinite-length element", offset);
	if ((tag & 0x1f) === 0x1f) throw new DerError("high tag numbers are not supported", offset);
	let pos = offset + 1;
	if (pos >= limit) throw new DerError("truncated length", offset);
	const first = bytes[pos++]!;
	let length = first;
	if (first === 0x80) {
		if ((tag & 0x20) === 0) throw new DerError("indefinite length on a primitive element", offset);
		return readIndefinite(bytes, tag, offset, pos, limit, depth);
	}
	if (first > 0x80) {
		const count = first & 0x7f;
		if (count > 4) throw new DerError("length field too long", offset);
		if (pos + count > limit) throw new DerError("truncated length", offset);
		length = 0;
		for (let i = 0; i < count; i++) length = length * 256 + bytes[pos++]!;
	}
	if (length > limit - pos) throw new DerError("length exceeds the enclosing data", offset);
	return { tag, start: offset, contentStart: pos, contentEnd: pos + length, end: pos + length };
}

function readIndefinite(bytes: Uint8Array, tag: number, start: number, contentStart: number, limit: number, depth: number): Tlv {
	if (depth >= MAX_INDEFINITE_DEPTH) throw new DerError("indefinite-length elements nested too deeply", start);
	let pos = contentStart;
	for (;;) {
		if (pos + 1 < limit && bytes[pos] === 0x00 && bytes[pos + 1] === 0x00) {
			return { tag, start, contentStart, contentEnd: pos, end: pos + 2 };
		}
		if (pos >= limit) throw new DerError("missing end-of-contents marker", start);
		pos = readTlv(bytes, pos, limit, depth + 1).end;
	}
}

/** Reads the elements of a constructed value one after another, each checked to end inside it. */
export class DerCursor {
	#pos: number;

	constructor(
		readonly bytes: Uint8Array,
		start: number,
		readonly end: number,
	) {
		this.#pos = start;
	}

	static within(bytes: Uint8Array, parent: Tlv): DerCursor {
		if ((parent.tag & 0x20) === 0) throw new DerError("expected a constructed element", parent.start);
		return new DerCursor(bytes, parent.contentStart, parent.contentEnd);
	}

	get done(): boolean {
		return this.#pos >= this.end;
	}

	peekTag(): number | undefined {
		return this.done ? undefined : this.bytes[this.#pos];
	}

	/** The next element, which must carry `tag` when one is given. */
	next(tag?: number): Tlv {
		const tlv = readTlv(this.bytes, this.#pos, this.end);
		if (tag !== undefined && tlv.tag !== tag) {
			throw new DerError(`expected tag 0x${hex(tag)} but found 0x${hex(tlv.tag)}`, tlv.start);
		}
		this.#pos = tlv.end;
		return tlv;
	}

	/** The next element if it carries `tag` (an OPTIONAL or DEFAULT field), else nothing is consumed. */
	optional(tag: number): Tlv | undefined {
		return this.peekTag() === tag ? this.next() : undefined;
	}

	/** Refuses trailing elements: a structure with extra fields is not the one we think we are reading. */
	finish(): void {
		if (!this.done) throw new DerError("unexpected trailing data", this.#pos);
	}
}

/**
 * The one element that fills `start`..`end` (a whole buffer, an EXPLICIT tag's content, an OCTET STRING holding
 * DER), of `tag` if given. Anything after it is refused: it would be data nobody reads, and nobody checked.
 */
export function readSingle(bytes: Uint8Array, start = 0, end: number = bytes.length, tag?: number): Tlv {
	const cursor = new DerCursor(bytes, start, end);
	const tlv = cursor.next(tag);
	cursor.finish();
	return tlv;
}

/** The one element inside a constructed or EXPLICIT value. */
export function readInner(bytes: Uint8Array, outer: Tlv, tag?: number): Tlv {
	return readSingle(bytes, outer.contentStart, outer.contentEnd, tag);
}

function contentOf<B extends ArrayBufferLike>(bytes: Uint8Array<B>, tlv: Tlv): Uint8Array<B> {
	return bytes.subarray(tlv.contentStart, tlv.contentEnd);
}

/** The whole element, identifier and length included: what signatures cover and names are compared by. */
export function encodingOf<B extends ArrayBufferLike>(bytes: Uint8Array<B>, tlv: Tlv): Uint8Array<B> {
	return bytes.subarray(tlv.start, tlv.end);
}

export function readOid(bytes: Uint8Array, tlv: Tlv): string {
	expectTag(tlv, Tag.OID);
	if (tlv.contentEnd === tlv.contentStart) throw new DerError("empty OBJECT IDENTIFIER", tlv.start);
	const arcs: number[] = [];
	let value = 0;
	for (let i = tlv.contentStart; i < tlv.contentEnd; i++) {
		const byte = bytes[i]!;
		value = value * 128 + (byte & 0x7f);
		if (value > Number.MAX_SAFE_INTEGER) throw new DerError("OBJECT IDENTIFIER arc too large", tlv.start);
		if ((byte & 0x80) === 0) {
			if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
			else arcs.push(value);
			value = 0;
		} else if (i === tlv.contentEnd - 1) {
			throw new DerError("truncated OBJECT IDENTIFIER", tlv.start);
		}
	}
	return arcs.join(".");
}

export function readBoolean(bytes: Uint8Array, tlv: Tlv): boolean {
	expectTag(tlv, Tag.BOOLEAN);
	if (tlv.contentEnd - tlv.contentStart !== 1) throw new DerError("BOOLEAN must be one byte", tlv.start);
	return bytes[tlv.contentStart] !== 0;
}

/** A non-negative INTEGER that fits a JavaScript number exactly (receipt field types, quantities). */
export function readUnsigned(bytes: Uint8Array, tlv: Tlv): number {
	expectTag(tlv, Tag.INTEGER);
	const length = tlv.contentEnd - tlv.contentStart;
	if (length === 0) throw new DerError("empty INTEGER", tlv.start);
	if ((bytes[tlv.contentStart]! & 0x80) !== 0) throw new DerError("negative INTEGER", tlv.start);
	let value = 0;
	for (let i = tlv.contentStart; i < tlv.contentEnd; i++) value = value * 256 + bytes[i]!;
	if (value > Number.MAX_SAFE_INTEGER) throw new DerError("INTEGER too large", tlv.start);
	return value;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** UTF8String, PrintableString or IA5String as text (the latter two are ASCII subsets of UTF-8). */
export function readString(bytes: Uint8Array, tlv: Tlv): string {
	if (tlv.tag !== Tag.UTF8_STRING && tlv.tag !== Tag.PRINTABLE_STRING && tlv.tag !== Tag.IA5_STRING) {
		throw new DerError(`expected a string but found tag 0x${hex(tlv.tag)}`, tlv.start);
	}
	return decodeUtf8(contentOf(bytes, tlv), tlv.start);
}

/** The bits of a BIT STRING whose length is a whole number of bytes (keys and signatures always are). */
export function readBitStringBytes<B extends ArrayBufferLike>(bytes: Uint8Array<B>, tlv: Tlv): Uint8Array<B> {
	expectTag(tlv, Tag.BIT_STRING);
	if (tlv.contentEnd === tlv.contentStart || bytes[tlv.contentStart] !== 0) {
		throw new DerError("BIT STRING with unused bits", tlv.start);
	}
	return bytes.subarray(tlv.contentStart + 1, tlv.contentEnd);
}

/**
 * UTCTime or GeneralizedTime as milliseconds since the epoch, in the only forms RFC 5280 allows: seconds present,
 * `Z`, no fraction. UTCTime years 50–99 are 1950–1999.
 */
export function readTime(bytes: Uint8Array, tlv: Tlv): number {
	// Digit by digit, not with a regular expression: see certificateBase64ToBytes.
	const utc = tlv.tag === Tag.UTC_TIME;
	const yearDigits = utc ? 2 : 4;
	const at = tlv.contentStart;
	const malformed = () => new DerError("expected a UTCTime or GeneralizedTime of the form RFC 5280 allows", tlv.start);
	// YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ, nothing more or less.
	if ((!utc && tlv.tag !== Tag.GENERALIZED_TIME) || tlv.contentEnd - at !== yearDigits + 11 || bytes[tlv.contentEnd - 1] !== 0x5a) throw malformed();
	const digits = (from: number, count: number): number => {
		let value = 0;
		for (let i = at + from; i < at + from + count; i++) {
			const digit = bytes[i]! - 0x30;
			if (digit < 0 || digit > 9) throw malformed();
			value = value * 10 + digit;
		}
		return value;
	};
	const year = digits(0, yearDigits);
	const month = digits(yearDigits, 2);
	const day = digits(yearDigits + 2, 2);
	const hour = digits(yearDigits + 4, 2);
	const minute = digits(yearDigits + 6, 2);
	const second = digits(yearDigits + 8, 2);
	const fullYear = utc ? (year < 50 ? 2000 + year : 1900 + year) : year;
	const date = new Date(Date.UTC(2000, 0, 1, hour, minute, second));
	// setUTCFullYear, not Date.UTC's year: Date.UTC reads years 0-99 as 1900-1999.
	date.setUTCFullYear(fullYear, month - 1, day);
	// Date rolls 31 February over into March; a date that does not round-trip does not exist.
	if (month < 1 || month > 12 || date.getUTCDate() !== day || date.getUTCMonth() !== month - 1 || hour > 23 || minute > 59 || second > 59) {
		throw new DerError("time out of range", tlv.start);
	}
	return date.getTime();
}

const nativeFromBase64 = (Uint8Array as unknown as { fromBase64?: (text: string, options?: { lastChunkHandling: "strict" }) => Bytes }).fromBase64;

/**
 * Standard base64 (x5c entries, receipts) to bytes. Only the alphabet is accepted: no whitespace, no stray
 * characters. (JWS segments are base64url, which jose decodes.)
 */
export function base64ToBytes(text: string): Bytes {
	if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 === 1) throw new DerError("invalid base64", 0);
	try {
		// Where the runtime has Uint8Array.fromBase64 (workerd does), it decodes natively.
		if (nativeFromBase64) return nativeFromBase64(text);
		const binary = atob(text);
		const out = new Uint8Array(binary.length);
		for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
		return out;
	} catch {
		throw new DerError("invalid base64", 0);
	}
}

/**
 * A certificate's standard base64 (an x5c entry, RFC 7515 section 4.1.6; a configured root once its PEM armour is
 * gone) to bytes. Where the runtime decodes base64 itself (workerd), it decodes strictly: no whitespace, the padding
 * exact. A regular expression would say the same, but compiling one costs more than decoding the certificate the
 * first time an isolate meets one (bench/README.md, "first call"). Elsewhere, base64ToBytes.
 */
export function certificateBase64ToBytes(text: string): Bytes {
	if (!nativeFromBase64) return base64ToBytes(text);
	// The native decoder skips these (the forgiving-base64 whitespace); nothing else outside the alphabet passes it.
	if (text.includes(" ") || text.includes("\t") || text.includes("\n") || text.includes("\f") || text.includes("\r")) throw new DerError("invalid base64", 0);
	try {
		return nativeFromBase64(text, { lastChunkHandling: "strict" });
	} catch {
		throw new DerError("invalid base64", 0);
	}
}

function decodeUtf8(bytes: Uint8Array, offset = 0): string {
	try {
		return utf8.decode(bytes);
	} catch {
		throw new DerError("text is not valid UTF-8", offset);
	}
}

function expectTag(tlv: Tlv, tag: number): void {
	if (tlv.tag !== tag) throw new DerError(`expected tag 0x${hex(tag)} but found 0x${hex(tlv.tag)}`, tlv.start);
}

function hex(byte: number): string {
	return byte.toString(16).padStart(2, "0");
}
