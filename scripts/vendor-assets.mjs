// npm install runs this (postinstall): the chart library the console's KPI page draws with (uPlot, MIT) is copied
// from node_modules to public/assets/vendor/, which Workers Static Assets serve beside the Worker (wrangler.toml
// [assets]), so that nothing is fetched from a CDN at run time and its version is the one package.json pins.
// Plain JavaScript for any Node: it runs before the project's own Node 22 is on every PATH.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const target = join(root, "public/assets/vendor");
mkdirSync(target, { recursive: true });
for (const [from, to] of [
	["node_modules/uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"],
	["node_modules/uplot/dist/uPlot.min.css", "uPlot.min.css"],
	["node_modules/uplot/LICENSE", "uPlot.LICENSE.txt"],
]) {
	copyFileSync(join(root, from), join(target, to));
}
