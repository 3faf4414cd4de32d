import { toJSONSchema, type ZodType } from "zod";

/**
 * A zod schema as the OpenAPI integration reads it (hono-openapi's resolver shape: `toOpenAPISchema`), converted
 * with zod's own toJSONSchema, as requests are read (`io: "input"`: before defaults and transforms). Named schemas
 * (`.meta({ id })`) become `components.schemas` entries. Written here rather than taken from hono-openapi's
 * `resolver`, whose converters load every schema library they support and all of zod's core with it: several
 * hundred KiB of Worker for one function zod already has.
 */

const DEFS = "#/$defs/";
const COMPONENTS = "#/components/schemas/";

function rewrite(value: unknown): unknown {
	if (Array.isArray(value)) return value.map(rewrite);
	if (value && typeof value === "object") {
		return Object.fromEntries(
			Object.entries(value).map(([key, inner]) => [key, key === "$ref" && typeof inner === "string" && inner.startsWith(DEFS) ? COMPONENTS + inner.slice(DEFS.length) : rewrite(inner)]),
		);
	}
	return value;
}

export function openApiSchema(schema: ZodType) {
	return {
		vendor: "zod",
		validate: schema["~standard"].validate,
		async toOpenAPISchema() {
			const { $schema: _dialect, $defs, ...root } = toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
			return {
				schema: rewrite(root) as Record<string, unknown>,
				...($defs ? { components: { schemas: rewrite($defs) as Record<string, Record<string, unknown>> } } : {}),
			};
		},
	};
}
