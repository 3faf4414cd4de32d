/**
 * Stands in for hono-openapi's schema converters in the deployed Worker (wrangler.toml [alias]). They load a
 * converter for every schema library they support, and with zod's all of zod's core and its locales: about 300 KiB
 * of Worker. This service converts its schemas with zod's own toJSONSchema (src/openapi/zod-schema.ts) and
 * validates with its own middleware (src/http/validate.ts), so nothing calls them; if something ever did, it
 * would fail loudly rather than describe a route wrongly.
 */
function unused(name: string): never {
	throw new Error(`${name} is not part of this Worker: schemas are converted by src/openapi/zod-schema.ts`);
}
export const loadVendor = () => unused("loadVendor");
export const toJsonSchema = () => unused("toJsonSchema");
export const toOpenAPISchema = () => unused("toOpenAPISchema");
export const sValidator = () => unused("sValidator");
