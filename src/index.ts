import { DurableObject } from "cloudflare:workers";
export class TransactionClaim extends DurableObject<Env> {}
export default { fetch: () => new Response("ok") } satisfies ExportedHandler<Env>;
