/**
 * A small DER (and, on request, BER indefinite-length) writer for building certificates and receipts in tests.
 * Runs in Node and workerd alike: plain TypeScript, no dependencies.
 */

/** ArrayBuffer-backed, so what this builds can go straight to crypto.subtle under either runtime's types. */
export type Bytes = Uint8Array<ArrayBuffer>;

export function concat(...parts: Uint8Array[]): Bytes {
	const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
	let at = 0;
	for (const part of parts) {
		out.set(part, at);
		at += part.length;
	}
	return out;
}

export function encodeLength(length: number): Bytes {
	if (length < 0x80) return Uint8Array.of(length);
	const bytes: number[] = [];
	for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
	return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** One element with a definite length. */
export function tlv(tag: number, ...content: Uint8Array[]): Bytes {
	const body = concat(...content);
	return concat(Uint8Array.of(tag), encodeLength(body.length), body);
}

/** One constructed element with BER's indefinite length: `tag 80 … 00 00`, as Xcode writes receipts. */
export function indefinite(tag: number, ...content: Uint8Array[]): Bytes {
	if ((tag & 0x20) === 0) throw new Error("only constructed elements may have an indefinite length");
	return concat(Uint8Array.of(tag, 0x80), ...content, Uint8Array.of(0, 0));
}

export const sequence = (...content: Uint8Array[]) => tlv(0x30, ...content);
export const set = (...content: Uint8Array[]) => tlv(0x31, ...content);
/** `[n] EXPLICIT inner`. */
export const explicit = (n: number, ...inner: Uint8Array[]) => tlv(0xa0 | n, ...inner);
export const octetString = (bytes: Uint8Array) => tlv(0x04, bytes);
export const bitString = (bytes: Uint8Array) => tlv(0x03, Uint8Array.of(0), bytes);
export const nullValue = () => Uint8Array.of(0x05, 0x00);
export const boolean = (value: boolean) => Uint8Array.of(0x01, 0x01, value ? 0xff : 0x00);
export const utf8String = (text: string) => tlv(0x0c, new TextEncoder().encode(text));
export const printableString = (text: string) => tlv(0x13, new TextEncoder().encode(text));
export const ia5String = (text: string) => tlv(0x16, new TextEncoder().encode(text));

export function oid(dotted: string): Bytes {
	const arcs = dotted.split(".").map(Number);
	const [first = 0, second = 0, ...rest] = arcs;
	const bytes: number[] = [];
	for (const arc of [first * 40 + second, ...rest]) {
		const chunk = [arc & 0x7f];
		for (let value = Math.floor(arc / 128); value > 0; value = Math.floor(value / 128)) chunk.unshift(0x80 | (value & 0x7f));
		bytes.push(...chunk);
	}
	return tlv(0x06, Uint8Array.from(bytes));
}

/** A non-negative INTEGER from a number or from unsigned big-endian bytes (serials, signature r and s). */
export function integer(value: number | Uint8Array): Bytes {
	let bytes: Uint8Array;
	if (typeof value === "number") {
		const list: number[] = [];
		for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) list.unshift(rest % 256);
		bytes = Uint8Array.from(list.length ? list : [0]);
	} else {
		let start = 0;
		while (start < value.length - 1 && value[start] === 0) start++;
		bytes = value.subarray(start);
	}
	// A set top bit would read as negative: DER adds a zero byte in front.
	return tlv(0x02, bytes[0]! & 0x80 ? concat(Uint8Array.of(0), bytes) : bytes);
}

/** RFC 5280's choice: UTCTime for 1950–2049, GeneralizedTime otherwise; always seconds and Z. */
export function time(ms: number): Bytes {
	const date = new Date(ms);
	const year = date.getUTCFullYear();
	const pad = (n: number) => String(n).padStart(2, "0");
	const rest = `${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}Z`;
	const utc = year >= 1950 && year < 2050;
	const text = utc ? `${pad(year % 100)}${rest}` : `${String(year).padStart(4, "0")}${rest}`;
	return tlv(utc ? 0x17 : 0x18, new TextEncoder().encode(text));
}
