import type { FC } from "hono/jsx";
import { Layout } from "../console/layout";

/**
 * GET /docs: the interactive API reference, rendered on the server from /openapi.json itself (so the two never
 * disagree), with a form per operation that sends a real request from the browser (public/assets/reference.js).
 * No framework, no CDN: it works offline under `wrangler dev`.
 */

type Json = Record<string, unknown>;
type Schema = Json & { $ref?: string; type?: string | string[]; properties?: Record<string, Schema>; required?: string[]; items?: Schema; oneOf?: Schema[]; anyOf?: Schema[]; enum?: unknown[]; const?: unknown; description?: string; examples?: unknown[]; example?: unknown };
interface Parameter { name: string; in: string; required?: boolean; description?: string; schema?: Schema }
interface Operation { summary?: string; description?: string; tags?: string[]; operationId?: string; security?: Record<string, string[]>[]; parameters?: Parameter[]; requestBody?: { content?: Record<string, { schema?: Schema; example?: unknown }> }; responses?: Record<string, { description?: string; content?: Record<string, { schema?: Schema; example?: unknown; examples?: Record<string, { summary?: string; value: unknown }> }> }> }
export interface OpenApiDocument { info: { title: string; description?: string; version: string }; tags?: { name: string; description?: string }[]; paths: Record<string, Record<string, Operation>>; components?: { schemas?: Record<string, Schema>; securitySchemes?: Record<string, Json> } }

const METHODS = ["get", "post", "put", "patch", "delete"] as const;

function resolve(doc: OpenApiDocument, schema: Schema | undefined): Schema | undefined {
	let current = schema;
	for (let i = 0; current?.$ref && i < 10; i++) current = doc.components?.schemas?.[current.$ref.split("/").pop()!];
	return current;
}

function typeOf(doc: OpenApiDocument, schema: Schema | undefined): string {
	const s = resolve(doc, schema);
	if (!s) return "any";
	const name = schema?.$ref?.split("/").pop();
	if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
	if (s.const !== undefined) return JSON.stringify(s.const);
	const variants = s.oneOf ?? s.anyOf;
	if (variants) return variants.map((v) => typeOf(doc, v)).join(" | ");
	const type = Array.isArray(s.type) ? s.type.join(" | ") : s.type;
	if (type === "array") return `${typeOf(doc, s.items)}[]`;
	return name ?? type ?? "any";
}

/** One row per field, nested objects flattened into dotted names. */
function fields(doc: OpenApiDocument, schema: Schema | undefined, prefix = "", depth = 0): { name: string; type: string; required: boolean; description: string }[] {
	const s = resolve(doc, schema);
	if (!s || depth > 4) return [];
	const variants = s.oneOf ?? s.anyOf;
	if (variants && variants.every((v) => resolve(doc, v)?.properties)) {
		const seen = new Map<string, ReturnType<typeof fields>[number]>();
		for (const v of variants) for (const f of fields(doc, v, prefix, depth)) if (!seen.has(f.name)) seen.set(f.name, f);
		return [...seen.values()];
	}
	return Object.entries(s.properties ?? {}).flatMap(([key, value]) => {
		const name = prefix ? `${prefix}.${key}` : key;
		const inner = resolve(doc, value);
		const row = { name, type: typeOf(doc, value), required: s.required?.includes(key) ?? false, description: inner?.description ?? value.description ?? "" };
		return inner?.properties && !value.$ref ? [row, ...fields(doc, inner, name, depth + 1)] : [row];
	});
}

/** A starting body for the try-it form: the schema's example, else its required fields with placeholder values. */
export function sampleOf(doc: OpenApiDocument, schema: Schema | undefined, depth = 0): unknown {
	const s = resolve(doc, schema);
	if (!s || depth > 5) return null;
	if (s.example !== undefined) return s.example;
	if (s.examples?.length) return s.examples[0];
	if (s.const !== undefined) return s.const;
	if (s.enum) return s.enum[0];
	const variants = s.oneOf ?? s.anyOf;
	if (variants) return sampleOf(doc, variants[0], depth + 1);
	const type = Array.isArray(s.type) ? s.type.find((t) => t !== "null") : s.type;
	switch (type) {
		case "object":
			return Object.fromEntries((s.required ?? []).map((key) => [key, sampleOf(doc, s.properties?.[key], depth + 1)]));
		case "array":
			return [];
		case "integer":
		case "number":
			return 0;
		case "boolean":
			return false;
		default:
			return "";
	}
}

const FieldTable: FC<{ rows: ReturnType<typeof fields>; caption: string }> = ({ rows, caption }) =>
	rows.length === 0 ? null : (
		<table class="fields">
			<caption>{caption}</caption>
			<thead>
				<tr>
					<th scope="col">field</th>
					<th scope="col">type</th>
					<th scope="col">description</th>
				</tr>
			</thead>
			<tbody>
				{rows.map((r) => (
					<tr>
						<td>
							<code>{r.name}</code>
							{r.required ? <span class="required" title="required"> required</span> : null}
						</td>
						<td>
							<code>{r.type}</code>
						</td>
						<td>{r.description}</td>
					</tr>
				))}
			</tbody>
		</table>
	);

const OperationView: FC<{ doc: OpenApiDocument; path: string; method: string; op: Operation }> = ({ doc, path, method, op }) => {
	const id = op.operationId ?? `${method}-${path}`;
	const body = op.requestBody?.content?.["application/json"];
	const params = op.parameters ?? [];
	const security = (op.security ?? []).flatMap((s) => Object.keys(s));
	const sample = body ? (body.example ?? sampleOf(doc, body.schema)) : undefined;
	return (
		<section class="operation" id={id} aria-labelledby={`${id}-title`}>
			<h3 id={`${id}-title`}>
				<span class={`method method-${method}`}>{method.toUpperCase()}</span> <code>{path}</code>
				<span class="summary">{op.summary}</span>
			</h3>
			{op.description ? <p>{op.description}</p> : null}
			<p class="security">{security.length === 0 ? "No credentials." : `Credentials: ${security.join(" or ")}.`}</p>
			<FieldTable caption="Parameters" rows={params.map((p) => ({ name: `${p.name} (${p.in})`, type: typeOf(doc, p.schema), required: p.required ?? false, description: p.description ?? resolve(doc, p.schema)?.description ?? "" }))} />
			{body ? <FieldTable caption="Request body (JSON)" rows={fields(doc, body.schema)} /> : null}
			<details>
				<summary>Responses</summary>
				{Object.entries(op.responses ?? {}).map(([status, response]) => {
					const media = response.content?.["application/json"];
					const example = media?.example ?? Object.values(media?.examples ?? {})[0]?.value;
					return (
						<div class="response">
							<h4>
								<span class={`status status-${status[0]}`}>{status}</span> {response.description}
							</h4>
							{media?.schema ? <p>Schema: <code>{typeOf(doc, media.schema)}</code></p> : null}
							{example !== undefined ? <pre>{JSON.stringify(example, null, 2)}</pre> : null}
						</div>
					);
				})}
			</details>
			<form class="try" data-method={method.toUpperCase()} data-path={path} aria-label={`Try ${method.toUpperCase()} ${path}`}>
				<h4>Try it</h4>
				{params
					.filter((p) => p.in === "path" || p.in === "query")
					.map((p) => (
						<label>
							{p.name} <span class="muted">({p.in}{p.required ? ", required" : ""})</span>
							<input name={p.name} data-in={p.in} required={p.in === "path"} autocomplete="off" />
						</label>
					))}
				{body ? (
					<label>
						JSON body
						<textarea name="__body" rows={Math.min(16, JSON.stringify(sample, null, 2).split("\n").length + 1)} spellcheck={false}>
							{JSON.stringify(sample, null, 2)}
						</textarea>
					</label>
				) : null}
				<button type="submit">Send</button>
				<output aria-live="polite"></output>
			</form>
		</section>
	);
};

export const Reference: FC<{ doc: OpenApiDocument }> = ({ doc }) => {
	const operations = Object.entries(doc.paths).flatMap(([path, item]) => METHODS.filter((m) => item[m]).map((method) => ({ path, method, op: item[method]! })));
	const tags = (doc.tags ?? []).filter((tag) => operations.some((o) => o.op.tags?.includes(tag.name)));
	return (
		<Layout title={`${doc.info.title} API reference`} scripts={["/assets/reference.js"]} wide>
			<header class="page-header">
				<h1>{doc.info.title} API reference</h1>
				<p>{doc.info.description}</p>
				<p>
					The machine-readable description: <a href="/openapi.json">/openapi.json</a> (OpenAPI {String((doc as unknown as Json).openapi)}).
				</p>
			</header>
			<div class="reference">
				<nav aria-label="Operations" class="toc">
					<h2>Operations</h2>
					{tags.map((tag) => (
						<>
							<h3>{tag.name}</h3>
							<ul>
								{operations
									.filter((o) => o.op.tags?.includes(tag.name))
									.map((o) => (
										<li>
											<a href={`#${o.op.operationId ?? `${o.method}-${o.path}`}`}>
												<span class={`method method-${o.method}`}>{o.method.toUpperCase()}</span> {o.path}
											</a>
										</li>
									))}
							</ul>
						</>
					))}
				</nav>
				<main id="main" tabindex={-1}>
					<section class="credentials" aria-labelledby="credentials-title">
						<h2 id="credentials-title">Credentials for “Try it”</h2>
						<p>Kept in this page only (never stored). Requests go to this server, from your browser.</p>
						<label>
							API key (sent as <code>Authorization: Bearer …</code>)
							<input id="try-api-key" type="password" autocomplete="off" />
						</label>
						<label>
							Verify key (sent as <code>X-Verify-Key</code>)
							<input id="try-verify-key" type="password" autocomplete="off" />
						</label>
					</section>
					{tags.map((tag) => (
						<section aria-labelledby={`tag-${tag.name}`}>
							<h2 id={`tag-${tag.name}`}>{tag.name}</h2>
							<p>{tag.description}</p>
							{operations
								.filter((o) => o.op.tags?.includes(tag.name))
								.map((o) => (
									<OperationView doc={doc} path={o.path} method={o.method} op={o.op} />
								))}
						</section>
					))}
				</main>
			</div>
		</Layout>
	);
};
