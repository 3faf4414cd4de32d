// The KPI page's charts, drawn with uPlot (public/assets/vendor, served by this Worker) from the numbers the page
// carries in #kpi-data (data-kpi: the same numbers as its table). Without JavaScript the table says it all.
(function () {
	"use strict";
	var holder = document.getElementById("kpi-data");
	if (!holder || typeof uPlot === "undefined") return;
	var data = JSON.parse(holder.getAttribute("data-kpi"));
	var days = data.days;
	var x = days.map(function (d) { return Date.parse(d.day + "T12:00:00Z") / 1000; });
	var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
	var axis = { stroke: dark ? "#c9ced6" : "#444b55", grid: { stroke: dark ? "#343840" : "#e5e7eb" }, ticks: { stroke: dark ? "#343840" : "#e5e7eb" } };
	var palette = ["#1f5fbf", "#2e8b57", "#d97706", "#7c3aed", "#0891b2", "#be185d", "#4b5563"];

	function draw(el, series) {
		var width = Math.max(260, el.clientWidth || 300);
		var opts = {
			width: width,
			height: 220,
			scales: { x: { time: true } },
			axes: [axis, Object.assign({}, axis, { size: 44 })],
			series: [{}].concat(series.map(function (s) { return { label: s.label, stroke: s.color, width: 2, fill: s.fill || undefined, points: { show: days.length < 40 } }; })),
		};
		var plot = new uPlot(opts, [x].concat(series.map(function (s) { return s.values; })), el);
		el.setAttribute("data-drawn", String(series.length));
		window.addEventListener("resize", function () { plot.setSize({ width: Math.max(260, el.clientWidth || 300), height: 220 }); });
	}

	document.querySelectorAll("[data-chart]").forEach(function (el) {
		var kind = el.getAttribute("data-chart");
		if (kind === "activity") {
			draw(el, [
				{ label: "New purchases", color: palette[0], values: days.map(function (d) { return d.newPurchases; }) },
				{ label: "Renewals", color: palette[1], values: days.map(function (d) { return d.renewals; }) },
				{ label: "Refunds", color: palette[2], values: days.map(function (d) { return d.refunds; }) },
				{ label: "Revocations", color: palette[3], values: days.map(function (d) { return d.revocations; }) },
			]);
		} else if (kind === "active") {
			draw(el, [{ label: "Active subscriptions", color: palette[4], fill: "rgba(8,145,178,0.12)", values: days.map(function (d) { return d.activeSubscriptions; }) }]);
		} else if (kind === "refusals") {
			var codes = data.codes.length ? data.codes : ["owned_by_another_user"];
			draw(el, codes.map(function (code, i) {
				return { label: code === "owned_by_another_user" ? "sharing (owned_by_another_user)" : code, color: code === "owned_by_another_user" ? "#d32f2f" : palette[(i + 5) % palette.length], values: days.map(function (d) { return d.refusals[code] || 0; }) };
			}));
		}
	});
})();
