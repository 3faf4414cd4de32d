import type { Context } from "hono";
import type { AppEnv } from "./app";

/**
 * D1 reads through the Sessions API, so that with read replication on they are served by a replica near the user.
 * A client that has just written (a grant answers with `x-d1-bookmark`) sends that bookmark back as
 * `x-d1-bookmark` and reads its own write; every read answers with the bookmark it reached.
 */
export const BOOKMARK_HEADER = "x-d1-bookmark";

/** A bookmark is opaque, but short and printable: anything else is ignored rather than passed to D1. */
const BOOKMARK = /^[\x21-\x7e]{1,256}$/;

export function readSession<E extends AppEnv>(c: Context<E>): D1DatabaseSession {
	const bookmark = c.req.header(BOOKMARK_HEADER);
	return c.env.DB.withSession(bookmark && BOOKMARK.test(bookmark) ? bookmark : "first-unconstrained");
}

/** Hands the session's bookmark back to the client. */
export function answerBookmark(c: Context, session: D1DatabaseSession): void {
	const bookmark = session.getBookmark();
	if (bookmark) c.header(BOOKMARK_HEADER, bookmark);
}
