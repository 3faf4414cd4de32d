import { readFileSync } from "node:fs";
import { compileErrors, validate } from "@readme/openapi-parser";
import Ajv2020 from "ajv/dist/2020.js";
import { beforeAll, describe, expect, inject, it } from "vitest";

/**
 * The OpenAPI document the running service serves, held to the OpenAPI 3.1 specification by @readme/openapi-parser,
 * and every request the README tells a user to send held to the document: its path and method are described, its
 * JSON body and query string valid against the schemas of that operation.
 */

type Operation = { parameters?: { name: string; in: string; required?: boolean; schema: unknown }[]; requestBody?: { content: Record<string, { schema: unknown }> } };
type Document = { paths: Record<string, Record<string, Operation>> };

let doc: Document;
beforeAll(async () => {
	doc = (await (await fetch(`${inject("service")}/openapi.json`)).json()) as Document;
});

describe("the OpenAPI document", () => {
	it("is valid OpenAPI 3.1", async () => {
		const result = await validate(structuredClone(doc) as never);
		expect(result.valid, result.valid ? "" : compileErrors(result)).toBe(true);
		expect(result.specification).toBe("OpenAPI");
	});
});

/** Sample values for the README's shell variables, shaped as the real ones are. */
const VARIABLES: Record<string, string> = {
	TOKEN: "opaque-token-of-a-google-purchase.AO-J1OzExample",
	LOCAL: JSON.stringify(JSON.stringify({ packageName: "com.example.iapedge", productId: "premium_monthly", purchaseToken: "opaque-token", autoRenewing: true })),
	JWS: "eyJhbGciOiJFUzI1NiIsIng1YyI6W119.eyJ0cmFuc2FjdGlvbklkIjoiMSJ9.c2lnbmF0dXJl",
	RECEIPT: "MIIT0gYJKoZIhvcNAQcCoIITwzCCE78CAQExCzAJBgUrDgMCGgUA",
	TXID: "2000000123456789",
	LIVE_TXID: "2000000123456790",
	DELIVERY_ID: "3f0c8a52-1111-2222-3333-444455556666:0",
	RECEIPT_ID: "q1YqVbJSyjH28DEy0i8oLkksqbS1MzNQ0lEqLU4tsjI0MjYwsDS0sDQ3MTA0sgQA:3:11",
	USER_DATA: JSON.stringify(JSON.stringify({ userId: "l3HL7XppEMhrOGDgWNJuj5V5PTPx1xQdJqGgbtfDh4A=", marketplace: "US" })),
	"1": "user123",
	"2": "eyJhbGciOiJFUzI1NiIsIng1YyI6W119.eyJ0cmFuc2FjdGlvbklkIjoiMSJ9.c2lnbmF0dXJl",
};

/** Reads one shell word at `at`: '…' literally, "…" and bare words with $VAR expanded. */
function shellWord(text: string, at: number): { word: string; end: number } {
	let word = "";
	let i = at;
	const expand = (s: string) => s.replace(/\$(\w+|\d)/g, (_, name: string) => VARIABLES[name] ?? `<${name}>`);
	while (i < text.length && !/[\s;|)]/.test(text[i]!)) {
		if (text[i] === "'") {
			const close = text.indexOf("'", i + 1);
			if (close < 0) throw new Error(`an unclosed ' in the README near: ${text.slice(i, i + 80)}`);
			word += text.slice(i + 1, close);
			i = close + 1;
		} else if (text[i] === '"') {
			const close = text.indexOf('"', i + 1);
			if (close < 0) throw new Error(`an unclosed " in the README near: ${text.slice(i, i + 80)}`);
			word += expand(text.slice(i + 1, close));
			i = close + 1;
		} else {
			const m = /^[^\s'";|)]+/.exec(text.slice(i))![0];
			word += expand(m);
			i += m.length;
		}
	}
	return { word, end: i };
}

interface Example {
	line: string;
	method: string;
	url: URL;
	body?: unknown;
}

/** Every curl command of the README's shell blocks that is sent to the service (port 8787). */
function readmeRequests(): Example[] {
	const readme = readFileSync("README.md", "utf8");
	const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!.replace(/\\\n\s*/g, " "));
	const examples: Example[] = [];
	for (const block of blocks) {
		for (const match of block.matchAll(/\bcurl\s/g)) {
			// The command's words, up to an unquoted end of line, ;, | or ).
			const words: string[] = [];
			let i = match.index + 5;
			while (i < block.length && !/[\n;|)]/.test(block[i]!)) {
				if (/\s/.test(block[i]!)) {
					i++;
					continue;
				}
				const { word, end } = shellWord(block, i);
				words.push(word);
				i = end;
			}
			const url = words.find((w) => w.startsWith("http://127.0.0.1:8787"));
			// /__scheduled is wrangler's own (--test-scheduled runs the Cron Trigger), not the service's.
			if (!url || new URL(url).pathname === "/__scheduled") continue;
			const flag = (name: string) => (words.includes(name) ? words[words.indexOf(name) + 1] : undefined);
			const data = flag("-d");
			const method = flag("-X") ?? (data === undefined ? "GET" : "POST");
			const line = block.slice(match.index, match.index + 140).replace(/\s+/g, " ");
			examples.push({ line, method, url: new URL(url), ...(data === undefined ? {} : { body: JSON.parse(data) }) });
		}
	}
	return examples;
}

function operationFor(path: string, method: string): { template: string; operation: Operation } | undefined {
	for (const [template, item] of Object.entries(doc.paths)) {
		const pattern = new RegExp(`^${template.replace(/\{\w+\}/g, "[^/]+")}$`);
		if (pattern.test(path) && item[method.toLowerCase()]) return { template, operation: item[method.toLowerCase()]! };
	}
	return undefined;
}

describe("every request the README shows", () => {
	const examples = readmeRequests();

	it("is found in the README: the walkthroughs and each endpoint's example", () => {
		expect(examples.length).toBeGreaterThan(20);
		expect(examples.filter((e) => e.body !== undefined).length).toBeGreaterThanOrEqual(10);
	});

	it("is an operation of the document, with a body and query its schemas accept", () => {
		const ajv = new Ajv2020({ strict: false, allErrors: true });
		const coercing = new Ajv2020({ strict: false, allErrors: true, coerceTypes: true });
		ajv.addSchema({ ...doc, $id: "openapi.json" });
		coercing.addSchema({ ...doc, $id: "openapi.json" });
		const pointer = (...parts: string[]) => `openapi.json#/${parts.map((p) => p.replaceAll("~", "~0").replaceAll("/", "~1")).join("/")}`;
		for (const example of examples) {
			const found = operationFor(example.url.pathname, example.method);
			expect(found, `${example.method} ${example.url.pathname} (${example.line})`).toBeDefined();
			const { template, operation } = found!;
			const method = example.method.toLowerCase();
			if (example.body !== undefined) {
				expect(operation.requestBody, example.line).toBeDefined();
				const check = ajv.compile({ $ref: pointer("paths", template, method, "requestBody", "content", "application/json", "schema") });
				expect(check(example.body), `${example.line}\n${ajv.errorsText(check.errors)}`).toBe(true);
			}
			const parameters = operation.parameters ?? [];
			for (const [name, value] of example.url.searchParams) {
				const index = parameters.findIndex((p) => p.in === "query" && p.name === name);
				expect(index, `?${name} of ${example.line}`).toBeGreaterThanOrEqual(0);
				const check = coercing.compile({ $ref: pointer("paths", template, method, "parameters", String(index), "schema") });
				expect(check(value), `?${name}=${value} of ${example.line}\n${coercing.errorsText(check.errors)}`).toBe(true);
			}
		}
	});
});
