/**
 * The App Store half of the fixtures: a test PKI shaped like Apple's, App Store Connect API keys, and the
 * apps' `apple` blocks. Merged into APPS_CONFIG / EMULATOR_CONFIG by fixtures.ts.
 */

export interface AppleFixtures {
	/** Per existing app id (see fixtures.ts), the `apple` block of that app's config. */
	appleByAppId: Record<string, Record<string, unknown>>;
	/** Complete app configs used only by App Store tests. */
	extraApps: Record<string, unknown>[];
	/** The endpoints.* entries for Apple, pointing at the emulator. */
	endpoints: Record<string, string>;
	/** Base64 DER roots the service trusts (the test root, instead of Apple Root CA G3). */
	appleRootCertificates: string[];
	/** EMULATOR_CONFIG.apple: what the emulator needs to sign and to check bearer tokens. */
	emulator: Record<string, unknown>;
}

export async function createAppleFixtures(_emulatorUrl: string, _options: { includeTestApps: boolean }): Promise<AppleFixtures> {
	return { appleByAppId: {}, extraApps: [], endpoints: {}, appleRootCertificates: [], emulator: {} };
}
