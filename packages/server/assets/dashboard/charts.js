/*
 * The dashboard's charts (GET /dashboard/charts): reads the series from the URL in #charts[data-url] (JSON from
 * /dashboard/charts/data), draws them with Chart.js (window.Chart, chart.umd.min.js loaded before this file), and
 * fetches them again every data-refresh-ms (20 s). A refresh that fails (the network, a 5xx) shows "Could not
 * refresh; retrying" next to the "As of" time and is tried again on the next tick (the note goes on the next success);
 * one that finds the session ended stops. The timer stops on pagehide and starts again on a pageshow from the
 * back/forward cache (drawing at once). Plain browser JavaScript, no build step; no inline script (the dashboard's
 * CSP). After each drawing every canvas carries data-points (buckets) and data-datasets, and #charts data-drawn (and
 * data-failed, the failed refreshes), for tests.
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

  // A refresh that failed (a network blip, a 5xx, a 429) says so and tries again on the next tick; one that lands on
  // the sign-in page (the session ended) stops, and says so: only a new sign-in helps.
  var note = document.querySelector('[data-testid=charts-retry]');
  if (!note) {
    var updatedEl = document.querySelector('[data-testid=charts-updated]');
    if (updatedEl) {
      // Under the heading's row (the "As of" time), so that it reads with the time it qualifies.
      note = document.createElement('p');
      note.className = 'error';
      note.setAttribute('data-testid', 'charts-retry');
      note.setAttribute('role', 'status');
      note.hidden = true;
      (updatedEl.closest('.row') || updatedEl).insertAdjacentElement('afterend', note);
    }
  }
  function say(text) {
    if (!note) return;
    note.textContent = text;
    note.hidden = !text;
  }

  function SignedOut() {}

  function load() {
    return fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (r) {
        if (r.status === 401 || r.status === 403 || (r.ok && r.redirected && !/json/.test(r.headers.get('content-type') || ''))) throw new SignedOut();
        if (!r.ok || !/json/.test(r.headers.get('content-type') || '')) throw new Error('charts: ' + r.status);
        return r.json();
      });
  }

  // One refresh chain at a time, on one timer: pagehide ends the chain, a pageshow from the back/forward cache starts a
  // new one, and the answer of an older chain (a fetch in flight when the page was put away) neither draws nor
  // schedules. A drawing that throws counts as a failed refresh.
  var timer;
  var generation = 0;
  function loop(gen) {
    clearTimeout(timer);
    timer = undefined;
    load()
      .then(function (d) { if (gen === generation) draw(d); })
      .then(function () {
        if (gen !== generation) return;
        say('');
        timer = setTimeout(loop, every, gen);
      }, function (err) {
        if (gen !== generation) return;
        if (err instanceof SignedOut) {
          root.setAttribute('data-stopped', '1');
          say('Signed out: reload the page to sign in again.');
          return;
        }
        root.setAttribute('data-failed', String(Number(root.getAttribute('data-failed') || 0) + 1));
        say('Could not refresh; retrying.');
        timer = setTimeout(loop, every, gen);
      });
  }
  loop(generation);
  window.addEventListener('pagehide', function () {
    generation++;
    clearTimeout(timer);
    timer = undefined;
  });
  // Back from the back/forward cache: the charts are as old as the page; draw them now and refresh again from there.
  window.addEventListener('pageshow', function (e) {
    if (!e.persisted) return;
    // Stopped signed out: the session may have been renewed meanwhile (another tab); if not, it stops again.
    root.removeAttribute('data-stopped');
    generation++;
    loop(generation);
  });
})();