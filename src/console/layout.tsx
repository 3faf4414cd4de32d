import type { Child, FC } from "hono/jsx";

/**
 * The one page frame of the console and the API reference: a skip link, one <main>, styles and scripts served by
 * this Worker (public/assets), nothing from elsewhere. Content Security Policy (src/console/security.ts) holds them
 * to that.
 */
export const Layout: FC<{ title: string; scripts?: string[]; styles?: string[]; wide?: boolean; header?: Child; children?: Child }> = ({ title, scripts = [], styles = [], wide, header, children }) => (
	<html lang="en">
		<head>
			<meta charset="utf-8" />
			<meta name="viewport" content="width=device-width, initial-scale=1" />
			<meta name="color-scheme" content="light dark" />
			<title>{title}</title>
			<link rel="stylesheet" href="/assets/site.css" />
			{styles.map((href) => (
				<link rel="stylesheet" href={href} />
			))}
			{scripts.map((src) => (
				<script src={src} defer></script>
			))}
		</head>
		<body class={wide ? "wide" : undefined}>
			<a class="skip" href="#main">
				Skip to content
			</a>
			{header}
			{children}
		</body>
	</html>
);
