/**
 * Random DER: trees of elements with the tags certificates and receipts use, each well formed on its own, so a
 * reader gets past the first length check and into its structure checks. Built with der-writer.ts.
 */
import fc from "fast-check";
import { indefinite, tlv, type Bytes } from "./der-writer.ts";

const PRIMITIVE_TAGS = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x16, 0x17, 0x18, 0x80, 0x81, 0x82];
const CONSTRUCTED_TAGS = [0x24, 0x30, 0x31, 0xa0, 0xa1, 0xa3];

const { element } = fc.letrec<{ element: Bytes }>((tie) => ({
	element: fc.oneof(
		{ depthSize: "small", withCrossShrink: true },
		fc.tuple(fc.constantFrom(...PRIMITIVE_TAGS), fc.uint8Array({ maxLength: 24 })).map(([tag, content]) => tlv(tag, content)),
		fc.tuple(fc.constantFrom(...CONSTRUCTED_TAGS), fc.array(tie("element"), { maxLength: 4 })).map(([tag, children]) => tlv(tag, ...children)),
	),
}));

/** One DER element, possibly constructed, up to a few levels deep. */
export const derElement: fc.Arbitrary<Bytes> = element;

/**
 * Large input made cheaply: one unit (random DER or random bytes) repeated up to `maxBytes`, alone or as the
 * children of one SEQUENCE with a definite or an indefinite length. Enough for a super-linear reader to stand out.
 */
export function largeDer(maxBytes: number): fc.Arbitrary<Bytes> {
	const unit = fc.oneof(derElement, fc.uint8Array({ minLength: 1, maxLength: 32 }));
	return fc.tuple(unit, fc.integer({ min: 1024, max: maxBytes }), fc.constantFrom("bare", "definite", "indefinite")).map(([one, size, wrap]) => {
		const count = Math.max(1, Math.floor(size / Math.max(1, one.length)));
		const content = new Uint8Array(count * one.length);
		for (let i = 0; i < count; i++) content.set(one, i * one.length);
		if (wrap === "definite") return tlv(0x30, content);
		if (wrap === "indefinite") return indefinite(0x30, content);
		return content;
	});
}
