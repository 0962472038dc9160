/*
 * The dashboard's charts (GET /dashboard/charts): reads the series from the URL in #charts[data-url] (JSON from
 * /dashboard/charts/data), draws them with Chart.js (window.Chart, chart.umd.min.js loaded before this file), and
 * fetches them again every data-refresh-ms (20 s). Plain browser JavaScript, no build step; no inline script (the
 * dashboard's CSP). After each drawing every canvas carries data-points (buckets) and data-datasets, for tests.
 * Changing a select submits the form (the page's URL keeps the choice).
 */
(function () {
  'use strict';
  var root = document.getElementById('charts');
  if (!root || !window.Chart) return;
  var url = root.getAttribute('data-url');
  var every = Math.max(15000, Math.min(30000, Number(root.getAttribute('data-refresh-ms')) || 20000));
  var charts = {};

  var COLORS = { succeeded: '#16a34a', retry: '#f59e0b', failed: '#dc2626', expired: '#6b7280', held: '#7c3aed', p50: '#1d4ed8', p99: '#db2777', pending: '#0f766e', due: '#ea580c' };

  var form = document.querySelector('[data-testid=charts-form]');
  if (form) {
    form.querySelectorAll('select').forEach(function (sel) {
      sel.addEventListener('change', function () { form.submit(); });
    });
  }

  function label(iso, bucketS) {
    var d = new Date(iso);
    var hh = String(d.getUTCHours()).padStart(2, '0');
    var mm = String(d.getUTCMinutes()).padStart(2, '0');
    return bucketS >= 86400 ? d.toISOString().slice(5, 10) : hh + ':' + mm;
  }

  function options(stacked, yTitle) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: 'index', intersect: false },
      plugins: { legend: { position: 'bottom', labels: { boxWidth: 12 } } },
      scales: {
        x: { stacked: stacked, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } },
        y: { stacked: stacked, beginAtZero: true, title: { display: true, text: yTitle }, ticks: { precision: 0 } },
      },
    };
  }

  // A value with no value on either side is a line of no length: draw it as a point, or a bucket's lone figure is invisible.

  function isolated(values) {

    return values.map(function (v, i) { return v !== null && (i === 0 || values[i - 1] === null) && (i === values.length - 1 || values[i + 1] === null) ? 3 : 0; });

  }


  function dataset(name, values, type) {
    var c = COLORS[name];
    return { label: name, data: values, backgroundColor: c, borderColor: c, borderWidth: type === 'line' ? 2 : 0, pointRadius: type === 'line' ? isolated(values) : 0, spanGaps: false, type: type };
  }

  function specs(d) {
    var outcomes = Object.keys(d.attempts);
    return {
      'chart-outcomes': { type: 'bar', empty: d.totals.attempts === 0, sets: outcomes.map(function (o) { return dataset(o, d.attempts[o], 'bar'); }), options: options(true, 'attempts') },
      'chart-latency': { type: 'line', empty: d.totals.attempts === 0, sets: [dataset('p50', d.latency.p50, 'line'), dataset('p99', d.latency.p99, 'line')], options: options(false, 'ms') },
      'chart-queue': { type: 'line', empty: d.totals.samples === 0, sets: [dataset('pending', d.queue.pending, 'line'), dataset('due', d.queue.due, 'line')], options: options(false, 'deliveries') },
    };
  }

  function draw(d) {
    var labels = d.buckets.map(function (b) { return label(b, d.bucket_seconds); });
    var all = specs(d);
    Object.keys(all).forEach(function (id) {
      var spec = all[id];
      var canvas = document.getElementById(id);
      if (!canvas) return;
      var box = canvas.parentElement;
      var empty = document.querySelector('[data-empty-for="' + id + '"]');
      if (empty) empty.hidden = !spec.empty;
      box.hidden = spec.empty;
      var chart = charts[id];
      if (!chart) {
        chart = charts[id] = new window.Chart(canvas, { type: spec.type, data: { labels: labels, datasets: spec.sets }, options: spec.options });
      } else {
        chart.data.labels = labels;
        chart.data.datasets = spec.sets;
        chart.update('none');
      }
      canvas.setAttribute('data-points', String(labels.length));
      canvas.setAttribute('data-datasets', String(spec.sets.length));
    });
    var updated = document.querySelector('[data-testid=charts-updated]');
    if (updated) updated.textContent = 'As of ' + d.as_of.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
    root.setAttribute('data-drawn', String(Number(root.getAttribute('data-drawn') || 0) + 1));
  }

  function load() {
    return fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (r) {
        // Signed out (a redirect to the sign-in page) or past the budget: stop refreshing; the next navigation says why.
        if (!r.ok || !/json/.test(r.headers.get('content-type') || '')) throw new Error('charts: ' + r.status);
        return r.json();
      })
      .then(draw);
  }

  var timer;
  function loop() {
    load().then(function () { timer = setTimeout(loop, every); }, function () { root.setAttribute('data-stopped', '1'); });
  }
  loop();
  window.addEventListener('pagehide', function () { clearTimeout(timer); });
})();
