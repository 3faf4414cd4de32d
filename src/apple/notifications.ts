/**
 * App Store Server Notifications V2 (https://developer.apple.com/documentation/appstoreservernotifications): a
 * signedPayload verified exactly as signed transactions are (chain to the trusted roots, Apple's OIDs, validity at
 * signedDate, ES256), then the signed transaction and renewal info inside it verified the same way, each on its
 * own. The notification names its app by bundleId (and, in Production, appAppleId); one naming no app here, or
 * anything that does not verify, is refused as a whole.
 */
import * as z from "zod";
import { InvalidNotification } from "../answers";
import type { AppConfig, AppleAppConfig } from "../config/schema";
import type { TrustStore } from "./chain";
import { AppleVerificationError } from "./errors";
import { verifyAppleRenewalInfo, verifyAppleSignedData, verifyAppleTransaction, type AppleRenewalInfo, type AppleTransaction } from "./signed-data";

/** ResponseBodyV2DecodedPayload, the parts acted on; the rest is kept as Apple sent it. */
const NotificationPayload = z.looseObject({
	notificationType: z.string().min(1),
	subtype: z.string().optional(),
	notificationUUID: z.string().min(1).max(128),
	signedDate: z.number().transform(Math.trunc),
	version: z.string().optional(),
	data: z
		.looseObject({
			environment: z.string().optional(),
			appAppleId: z.number().int().optional(),
			bundleId: z.string().optional(),
			signedTransactionInfo: z.string().optional(),
			signedRenewalInfo: z.string().optional(),
			/** 1 active, 2 expired, 3 billing retry, 4 billing grace period, 5 revoked */
			status: z.number().int().optional(),
			consumptionRequestReason: z.string().optional(),
		})
		.optional(),
	summary: z.looseObject({ environment: z.string().optional(), appAppleId: z.number().int().optional(), bundleId: z.string().optional() }).optional(),
	appData: z.looseObject({ environment: z.string().optional(), appAppleId: z.number().int().optional(), bundleId: z.string().optional() }).optional(),
	externalPurchaseToken: z.looseObject({ appAppleId: z.number().int().optional(), bundleId: z.string().optional() }).optional(),
});

export interface AppleNotification {
	/** notificationUUID: the same on every retry of one notification. */
	id: string;
	type: string;
	subtype: string | null;
	signedDate: number;
	environment: "Production" | "Sandbox";
	transaction?: AppleTransaction;
	renewal?: AppleRenewalInfo;
	/** The notification as decoded, nested signed data included, for the purchase's timeline. */
	decoded: Record<string, unknown>;
}

export interface VerifiedNotification {
	app: AppConfig & { apple: AppleAppConfig };
	notification: AppleNotification;
}

export async function verifyAppleNotification(signedPayload: string, options: { roots: TrustStore; apps: readonly AppConfig[]; now?: number }): Promise<VerifiedNotification> {
	const now = options.now ?? Date.now();
	try {
		// Notifications come from Apple's servers only: nothing Xcode-signed is taken, whatever an app allows.
		const verified = await verifyAppleSignedData(signedPayload, { roots: options.roots, allowLocalTesting: false, now });
		const parsed = NotificationPayload.safeParse(verified.payload);
		if (!parsed.success) throw new InvalidNotification("invalid", `the notification payload is not one Apple sends (${parsed.error.issues[0]?.path.join(".") || "root"})`);
		const payload = parsed.data;
		const environment = verified.environment === "Production" ? "Production" : "Sandbox";
		const about = payload.data ?? payload.summary ?? payload.appData ?? payload.externalPurchaseToken;
		const app = findApp(options.apps, about?.bundleId, about?.appAppleId, environment);
		const policy = { bundleId: app.apple.bundleId, appAppleId: app.apple.appAppleId, allowLocalTesting: false };
		// The environment is the notification's own (the app's Sandbox policy is the caller's to apply).
		const transaction = payload.data?.signedTransactionInfo
			? (await verifyAppleTransaction(payload.data.signedTransactionInfo, { roots: options.roots, app: policy, acceptSandbox: true, now })).payload
			: undefined;
		const renewal = payload.data?.signedRenewalInfo
			? (await verifyAppleRenewalInfo(payload.data.signedRenewalInfo, { roots: options.roots, app: policy, acceptSandbox: true, now })).payload
			: undefined;
		if (transaction && transaction.environment !== environment) throw new InvalidNotification("invalid", "the notification's transaction is from another environment than the notification");
		if (renewal && transaction && renewal.originalTransactionId !== transaction.originalTransactionId) {
			throw new InvalidNotification("invalid", "the notification's renewal info is for another subscription than its transaction");
		}
		const decoded: Record<string, unknown> = {
			...payload,
			...(payload.data ? { data: { ...payload.data, ...(transaction ? { signedTransactionInfo: transaction } : {}), ...(renewal ? { signedRenewalInfo: renewal } : {}) } } : {}),
		};
		return {
			app,
			notification: {
				id: payload.notificationUUID,
				type: payload.notificationType,
				subtype: payload.subtype ?? null,
				signedDate: payload.signedDate,
				environment,
				...(transaction ? { transaction } : {}),
				...(renewal ? { renewal } : {}),
				decoded,
			},
		};
	} catch (err) {
		if (err instanceof AppleVerificationError) throw new InvalidNotification("invalid", `the notification does not verify (${err.code}): ${err.message}`);
		throw err;
	}
}

/** The app a notification is for: its bundle, and in Production its Apple ID too, as Apple's own verifier checks. */
function findApp(apps: readonly AppConfig[], bundleId: string | undefined, appAppleId: number | undefined, environment: "Production" | "Sandbox") {
	if (bundleId === undefined) throw new InvalidNotification("invalid", "the notification names no bundleId");
	const app = apps.find(
		(a): a is AppConfig & { apple: AppleAppConfig } => a.apple?.bundleId === bundleId && (environment !== "Production" || a.apple.appAppleId === appAppleId),
	);
	if (!app) {
		const which = environment === "Production" ? `bundle ${bundleId} and Apple ID ${appAppleId ?? "(none)"}` : `bundle ${bundleId}`;
		throw new InvalidNotification("invalid", `no app here has ${which} (apps[].apple in APPS_CONFIG)`);
	}
	return app;
}
