import * as z from "zod";
import type { AppleEvidence } from "../apple/verify";

/**
 * The fields every route takes purchase evidence in, with one set of limits for all of them: sizes real stores
 * produce, with room to spare, so junk is refused with a 400 before it costs a store call (or makes one fail as
 * too large, which would read as an outage).
 */

/** Google purchase tokens are opaque printable ASCII, a few hundred characters at most. */
export const MAX_PURCHASE_TOKEN = 1024;
/** A StoreKit 2 signed transaction is ~4 KB, three certificates included. */
export const MAX_SIGNED_TRANSACTION = 16 * 1024;
/** A legacy app receipt grows with its in-app entries; years of monthly renewals stay far below this. */
export const MAX_RECEIPT = 256 * 1024;
/** App Store transaction ids are decimal strings of about 16 digits. */
export const MAX_TRANSACTION_ID_DIGITS = 32;

const nonEmpty = { error: "must be a non-empty string" };

/** Text a store or D1 can take as it is: no control characters, well-formed Unicode (a lone surrogate cannot be URL-encoded). */
const text = (max: number) =>
	z
		.string(nonEmpty)
		.min(1, nonEmpty)
		.max(max, { error: `at most ${max} characters` })
		.refine((id) => !/[\u0000-\u001f\u007f-\u009f]/.test(id), { error: "must not contain control characters" })
		.refine((id) => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(id), { error: "must be well-formed Unicode (no lone surrogates)" });

/**
 * A user id, the same rule on every route and never altered: 1–256 characters of well-formed Unicode, no control
 * characters, no leading or trailing whitespace (which would make two ids look alike). Stored and looked up
 * exactly as sent.
 */
export const userIdField = text(256).refine((id) => id.trim() === id, { error: "must not start or end with whitespace" });

export const productIdField = text(256);

export const purchaseTokenField = z
	.string(nonEmpty)
	.min(1, nonEmpty)
	.max(MAX_PURCHASE_TOKEN, { error: `at most ${MAX_PURCHASE_TOKEN} characters: no Google purchase token is longer` })
	.regex(/^[\x21-\x7e]+$/, { error: "must be a Google purchase token (printable ASCII, no spaces)" });

export const signedTransactionField = z
	.string(nonEmpty)
	.max(MAX_SIGNED_TRANSACTION, { error: `at most ${MAX_SIGNED_TRANSACTION} characters: no App Store signed transaction is longer` })
	.regex(/^[\w-]+\.[\w-]+\.[\w-]+$/, { error: "must be a compact JWS (three base64url parts separated by dots)" });

export const receiptField = z
	.string(nonEmpty)
	.max(MAX_RECEIPT, { error: `at most ${MAX_RECEIPT} characters` })
	.regex(/^[A-Za-z0-9+/=\s]+$/, { error: "must be a base64 App Store receipt" });

export const transactionIdField = z
	.string(nonEmpty)
	.regex(new RegExp(`^\\d{1,${MAX_TRANSACTION_ID_DIGITS}}$`), { error: "must be an App Store transaction id (digits)" });

/** Amazon documents receipt ids of at most 200 characters and user ids of at most 128. */
export const MAX_AMAZON_ID = 256;

/** Amazon's ids are opaque printable ASCII (base64 and a few separators such as `:` and `+`). */
const amazonId = (what: string) =>
	z
		.string(nonEmpty)
		.min(1, nonEmpty)
		.max(MAX_AMAZON_ID, { error: `at most ${MAX_AMAZON_ID} characters: no Amazon ${what} is longer` })
		.regex(/^[\x21-\x7e]+$/, { error: `must be an Amazon ${what} (printable ASCII, no spaces)` });

export const receiptIdField = amazonId("receipt id");
export const amazonUserIdField = amazonId("user id");

/** Where each part of the evidence is on the server API's bodies (validate, check): in a field named after it. */
export const SERVER_API_EVIDENCE_FIELDS = {
	purchaseToken: "purchaseToken",
	signedTransaction: "signedTransaction",
	receipt: "receipt",
	transactionId: "transactionId",
	receiptId: "receiptId",
	amazonUserId: "amazonUserId",
	store: "store",
} as const;

/** StoreKit 2 hands the app a signed transaction (a compact JWS); StoreKit 1 an app receipt (base64). */
export function isCompactJws(value: string): boolean {
	return /^[\w-]+\.[\w-]+\.[\w-]+$/.test(value);
}

/**
 * App Store evidence from the fields a caller sent, in one form. A signed transaction is Apple's own word and
 * wins; a receipt comes next, with the transaction id (if any) naming which of its transactions is claimed; a
 * transaction id alone is looked up.
 */
export function appleEvidence(fields: {
	productId: string;
	userId: string;
	signedTransaction?: string | undefined;
	receipt?: string | undefined;
	transactionId?: string | undefined;
}): AppleEvidence | undefined {
	const { productId, userId, signedTransaction, receipt, transactionId } = fields;
	const base = { store: "app_store", productId, userId } as const;
	if (signedTransaction !== undefined) return { ...base, form: "signed_transaction", signedTransaction };
	if (receipt !== undefined) return { ...base, form: "receipt", receipt: receipt.replace(/\s+/g, ""), ...(transactionId === undefined ? {} : { transactionId }) };
	if (transactionId !== undefined) return { ...base, form: "transaction_id", transactionId };
	return undefined;
}
