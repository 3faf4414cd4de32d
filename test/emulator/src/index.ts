export default {
	async fetch(): Promise<Response> {
		return new Response("emulator", { status: 200 });
	},
};
