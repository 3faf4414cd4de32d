/**
 * fast-check arbitraries that damage valid input: bytes (certificates, receipts) and text (compact JWS).
 * A mutation is a small readable record, not the damaged bytes, so a failing property reports and shrinks
 * to something like `[{ kind: "length", header: 3, value: 129 }]` instead of a kilobyte of numbers.
 * Positions are taken modulo the input's length, so any number is a valid position and shrinks toward 0.
 */
import fc from "fast-check";

export type ByteMutation =
	| { kind: "flip"; at: number; bit: number }
	| { kind: "set"; at: number; value: number }
	| { kind: "truncate"; to: number }
	| { kind: "insert"; at: number; bytes: number[] }
	| { kind: "delete"; at: number; count: number }
	/** The identifier octet of the `header`th element (in reading order) set to `value`. */
	| { kind: "tag"; header: number; value: number }
	/** The first length octet of the `header`th element set to `value`. */
	| { kind: "length"; header: number; value: number }
	/** The first length octet of the `header`th element moved by `delta`. */
	| { kind: "lengthDelta"; header: number; delta: number };

/** Length octets that mean something special: zero, the short-form maximum, indefinite, long forms, reserved. */
const SPECIAL_LENGTHS = [0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x88, 0xff];
/** Tags the readers look for, and the end-of-contents and high-tag-number forms they refuse. */
const SPECIAL_TAGS = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x16, 0x17, 0x18, 0x1f, 0x24, 0x30, 0x31, 0x80, 0xa0, 0xa3];

const byte = fc.integer({ min: 0, max: 255 });

export const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
	fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
	fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: byte }),
	fc.record({ kind: fc.constant("truncate" as const), to: fc.nat() }),
	fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.array(byte, { minLength: 1, maxLength: 8 }) }),
	fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
	fc.record({ kind: fc.constant("tag" as const), header: fc.nat(), value: fc.oneof(fc.constantFrom(...SPECIAL_TAGS), byte) }),
	fc.record({ kind: fc.constant("length" as const), header: fc.nat(), value: fc.oneof(fc.constantFrom(...SPECIAL_LENGTHS), byte) }),
	fc.record({ kind: fc.constant("lengthDelta" as const), header: fc.nat(), delta: fc.integer({ min: -3, max: 3 }).filter((d) => d !== 0) }),
);

/** One to four mutations, applied in order. */
export const byteMutations = fc.array(byteMutation, { minLength: 1, maxLength: 4 });

export function applyByteMutations(original: Uint8Array, mutations: readonly ByteMutation[]): Uint8Array<ArrayBuffer> {
	const headers = derHeaders(original);
	let bytes = Array.from(original);
	for (const mutation of mutations) bytes = applyOne(bytes, mutation, headers);
	return Uint8Array.from(bytes);
}

function applyOne(bytes: number[], m: ByteMutation, headers: readonly Header[]): number[] {
	const out = bytes.slice();
	const position = (at: number) => (out.length === 0 ? 0 : at % out.length);
	switch (m.kind) {
		case "flip":
			if (out.length > 0) out[position(m.at)]! ^= 1 << m.bit;
			return out;
		case "set":
			if (out.length > 0) out[position(m.at)] = m.value;
			return out;
		case "truncate":
			return out.slice(0, m.to % (out.length + 1));
		case "insert": {
			const at = m.at % (out.length + 1);
			return [...out.slice(0, at), ...m.bytes, ...out.slice(at)];
		}
		case "delete": {
			const at = position(m.at);
			return [...out.slice(0, at), ...out.slice(at + m.count)];
		}
		case "tag":
		case "length":
		case "lengthDelta": {
			const header = headers[m.header % Math.max(1, headers.length)];
			if (!header) return out;
			// Offsets are the original's: after an earlier insertion or deletion they may point elsewhere, which is fine.
			const at = m.kind === "tag" ? header.tag : header.length;
			if (at >= out.length) return out;
			out[at] = m.kind === "lengthDelta" ? (out[at]! + m.delta + 256) % 256 : m.value;
			return out;
		}
	}
}

interface Header {
	tag: number;
	length: number;
}

/**
 * Where each element's identifier and first length octet sit, in reading order, descending into constructed
 * elements and into OCTET STRINGs and BIT STRINGs that hold DER (receipt attributes, certificate signatures).
 * BER indefinite lengths are followed. Best effort: a region that does not read as DER is left undescended.
 */
export function derHeaders(bytes: Uint8Array): Header[] {
	const out: Header[] = [];
	try {
		walk(bytes, 0, bytes.length, out, 0);
	} catch {
		// What was found before the first unreadable element is still useful.
	}
	return out;
}

/** Reads elements from `pos` up to `end` or an end-of-contents marker; returns where it stopped. */
function walk(bytes: Uint8Array, pos: number, end: number, out: Header[], depth: number): number {
	if (depth > 64) throw new Error("too deep");
	while (pos < end) {
		if (bytes[pos] === 0 && bytes[pos + 1] === 0) return pos;
		const tag = bytes[pos]!;
		const first = bytes[pos + 1];
		if (first === undefined) throw new Error("truncated");
		out.push({ tag: pos, length: pos + 1 });
		let contentStart = pos + 2;
		if (first === 0x80) {
			pos = walk(bytes, contentStart, end, out, depth + 1) + 2;
			continue;
		}
		let length = first;
		if (first > 0x80) {
			length = 0;
			for (let i = 0; i < (first & 0x7f); i++) length = length * 256 + (bytes[contentStart++] ?? 0);
		}
		const contentEnd = contentStart + length;
		if (contentEnd > end) throw new Error("overrun");
		if (tag & 0x20) walk(bytes, contentStart, contentEnd, out, depth + 1);
		else if (tag === 0x04 || tag === 0x03) walkNested(bytes, tag === 0x03 ? contentStart + 1 : contentStart, contentEnd, out, depth + 1);
		pos = contentEnd;
	}
	return pos;
}

function walkNested(bytes: Uint8Array, start: number, end: number, out: Header[], depth: number): void {
	if (start >= end) return;
	const found: Header[] = [];
	try {
		if (walk(bytes, start, end, found, depth) === end) out.push(...found);
	} catch {
		// Plain octets, not DER.
	}
}

export type TextMutation =
	| { kind: "replace"; at: number; text: string }
	| { kind: "insert"; at: number; text: string }
	| { kind: "delete"; at: number; count: number }
	| { kind: "truncate"; to: number }
	/** Exchanges two of the dot-separated parts (header, payload, signature). */
	| { kind: "swapParts"; a: number; b: number }
	/** Replaces one part with a copy of another. */
	| { kind: "copyPart"; from: number; to: number };

const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** base64url's alphabet, standard base64's extra characters, the separator, white space and a few odd ones. */
const character = fc.oneof(
	{ weight: 4, arbitrary: fc.constantFrom(...BASE64URL) },
	{ weight: 1, arbitrary: fc.constantFrom(".", "=", "+", "/", " ", "\n", "\u0000", "é", "\u{1F600}") },
	{ weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
);
const snippet = fc.array(character, { minLength: 1, maxLength: 6 }).map((chars) => chars.join(""));

export const textMutation: fc.Arbitrary<TextMutation> = fc.oneof(
	{ weight: 4, arbitrary: fc.record({ kind: fc.constant("replace" as const), at: fc.nat(), text: character }) },
	{ weight: 2, arbitrary: fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), text: snippet }) },
	{ weight: 2, arbitrary: fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }) },
	{ weight: 1, arbitrary: fc.record({ kind: fc.constant("truncate" as const), to: fc.nat() }) },
	{ weight: 1, arbitrary: fc.record({ kind: fc.constant("swapParts" as const), a: fc.nat(2), b: fc.nat(2) }) },
	{ weight: 1, arbitrary: fc.record({ kind: fc.constant("copyPart" as const), from: fc.nat(2), to: fc.nat(2) }) },
);

export const textMutations = fc.array(textMutation, { minLength: 1, maxLength: 3 });

export function applyTextMutations(original: string, mutations: readonly TextMutation[]): string {
	return mutations.reduce(applyText, original);
}

function applyText(text: string, m: TextMutation): string {
	const position = (at: number) => (text.length === 0 ? 0 : at % text.length);
	switch (m.kind) {
		case "replace": {
			const at = position(m.at);
			return text.slice(0, at) + m.text + text.slice(at + 1);
		}
		case "insert": {
			const at = m.at % (text.length + 1);
			return text.slice(0, at) + m.text + text.slice(at);
		}
		case "delete": {
			const at = position(m.at);
			return text.slice(0, at) + text.slice(at + m.count);
		}
		case "truncate":
			return text.slice(0, m.to % (text.length + 1));
		case "swapParts":
		case "copyPart": {
			const parts = text.split(".");
			const [a, b] = m.kind === "swapParts" ? [m.a, m.b] : [m.from, m.to];
			if (a >= parts.length || b >= parts.length) return text;
			if (m.kind === "swapParts") [parts[a], parts[b]] = [parts[b]!, parts[a]!];
			else parts[b] = parts[a]!;
			return parts.join(".");
		}
	}
}
