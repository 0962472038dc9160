import { sampleQueue } from '../delivery/stats.js';
import type { Deps } from '../payments/context.js';

/** How often a process tries to sample the queue, unless CASHWIRE_QUEUE_SAMPLE_MS says otherwise. */
export const DEFAULT_QUEUE_SAMPLE_MS = 60_000;

/**
 * The queue-depth sampler (charts, issue 16): every `CASHWIRE_QUEUE_SAMPLE_MS` (default a minute) it tries to write
 * the sample of the current minute by the injected clock (delivery/stats.ts sampleQueue). Every process that runs the
 * background jobs runs one; the first to claim a minute writes it and the others write nothing, so several processes
 * (with clocks a few seconds apart) still give one sample a minute. A sampler that tries more often than once a minute
 * only finds its minute taken. Samples past CASHWIRE_QUEUE_SAMPLE_RETENTION_DAYS are pruned by the retention job.
 */
export function createQueueSampler(deps: Pick<Deps, 'db' | 'clock' | 'log'> & { config: Pick<Deps['config'], 'queueSamples'> }) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;

  const runOnce = () => sampleQueue(deps.db, deps.clock.now());

  function schedule() {
    if (stopped) return;
    timer = setTimeout(() => {
      running = runOnce()
        .catch((err) => deps.log.warn({ err }, 'queue sample failed; trying again on the next tick'))
        .finally(() => {
          running = undefined;
          schedule();
        });
    }, deps.config.queueSamples.everyMs);
    timer.unref();
  }

  return {
    runOnce,
    start() {
      stopped = false;
      // The first sample right away: a process started mid-minute fills that minute if no other process has.
      running = runOnce().catch((err) => deps.log.warn({ err }, 'queue sample failed; trying again on the next tick')).finally(() => { running = undefined; });
      schedule();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
