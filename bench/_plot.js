// Plots for docs/benchmarks.md, rendered to SVG by Vega-Lite (no browser, no canvas). The leading underscore keeps
// bench/run.js from running this file as a benchmark.
import * as vega from 'vega';
import * as vl from 'vega-lite';

async function toSvg(spec) {
  const { spec: compiled } = vl.compile(spec);
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/**
 * The recovery drain: deliveries received per second (one-second window, 100 ms steps) after the release, one line
 * per run, with each run's BullMQ rate as a dashed rule. `runs`: [{ name, curve: [{ t, rate }], bull, raw }].
 */
export function drainSvg(runs, title) {
  const points = runs.flatMap((r) => r.curve.map((p) => ({ run: r.name, t: p.t, rate: p.rate })));
  const rules = runs.map((r) => ({ run: r.name, bull: r.bull }));
  const raws = runs.map((r) => r.raw.toLocaleString('en-US')).join(', ');
  return toSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle: `Cashwire, deliveries received per second; dashed: the BullMQ sender of the same run (raw limit ${raws}/s)` },
    width: 640,
    height: 300,
    layer: [
      {
        data: { values: points },
        mark: { type: 'line', interpolate: 'monotone' },
        encoding: {
          x: { field: 't', type: 'quantitative', title: 'seconds after the release' },
          y: { field: 'rate', type: 'quantitative', title: 'deliveries/s' },
          color: { field: 'run', type: 'nominal' },
        },
      },
      {
        data: { values: rules },
        mark: { type: 'rule', strokeDash: [6, 4] },
        encoding: { y: { field: 'bull', type: 'quantitative' }, color: { field: 'run', type: 'nominal' } },
      },
    ],
    background: 'white',
  });
}

/**
 * Latency percentiles, one bar each (one group per scenario when there are several).
 * `rows`: [{ scenario, percentile ('p50', 'p90', 'p99', 'p99.9', 'max'), ms }].
 */
export function percentilesSvg(rows, title) {
  const order = ['p50', 'p90', 'p99', 'p99.9', 'max'];
  return toSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values: rows },
    width: 420,
    height: 260,
    mark: { type: 'bar', tooltip: true },
    encoding: {
      x: { field: 'percentile', type: 'nominal', sort: order, title: null, axis: { labelAngle: 0 } },
      xOffset: { field: 'scenario', type: 'nominal' },
      y: { field: 'ms', type: 'quantitative', title: 'milliseconds' },
      color: { field: 'scenario', type: 'nominal', legend: { orient: 'bottom', labelLimit: 600 } },
    },
    background: 'white',
  });
}
