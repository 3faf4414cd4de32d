// The API reference's "Try it" forms: each sends its request from the browser to this server, with the keys typed
// at the top of the page (kept in the page only), and shows the answer.
(function () {
	"use strict";
	function value(id) { var el = document.getElementById(id); return el ? el.value.trim() : ""; }
	document.querySelectorAll("form.try").forEach(function (form) {
		form.addEventListener("submit", function (event) {
			event.preventDefault();
			var out = form.querySelector("output");
			var path = form.getAttribute("data-path");
			var method = form.getAttribute("data-method");
			var query = new URLSearchParams();
			var missing = [];
			form.querySelectorAll("input[data-in]").forEach(function (input) {
				var v = input.value;
				if (input.getAttribute("data-in") === "path") {
					if (!v) missing.push(input.name);
					path = path.replace("{" + input.name + "}", encodeURIComponent(v));
				} else if (v) query.set(input.name, v);
			});
			if (missing.length) { out.textContent = "Fill in: " + missing.join(", "); return; }
			var headers = {};
			if (value("try-api-key")) headers.authorization = "Bearer " + value("try-api-key");
			if (value("try-verify-key")) headers["x-verify-key"] = value("try-verify-key");
			var init = { method: method, headers: headers };
			var body = form.querySelector("textarea[name=__body]");
			if (body) { init.body = body.value; headers["content-type"] = "application/json"; }
			var qs = query.toString();
			out.textContent = "Sending…";
			fetch(path + (qs ? "?" + qs : ""), init).then(function (response) {
				return response.text().then(function (text) {
					var shown = text;
					try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
					var pre = document.createElement("pre");
					pre.textContent = response.status + " " + response.statusText + "\n" + (response.headers.get("x-request-id") ? "x-request-id: " + response.headers.get("x-request-id") + "\n" : "") + "\n" + shown;
					out.replaceChildren(pre);
				});
			}, function (error) { out.textContent = "The request failed: " + error.message; });
		});
	});
})();
