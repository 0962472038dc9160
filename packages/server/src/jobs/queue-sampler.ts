import { countDelays, countDueMinutes, sampleQueue } from '../delivery/stats.js';
import type { Deps } from '../payments/context.js';

/** How often a process tries to sample the queue, unless CASHWIRE_QUEUE_SAMPLE_MS says otherwise. */
export const DEFAULT_QUEUE_SAMPLE_MS = 60_000;

/**
 * How far past each boundary of the interval a run is aimed: a timer that fires a little early, or a clock corrected
 * by a few hundred milliseconds in between (db/clock-sync.ts), still lands in the minute it was meant for.
 */
export const SAMPLE_OFFSET_MS = 1_000;

/**
 * The milliseconds from `now` to the next run: the first instant strictly after `after` (`now` unless the caller is
 * past a run it aimed at later than the clock says) that is a multiple of `everyMs` since the epoch plus the offset
 * (12:01:01, 12:02:01, … for a minute). Aimed at the clock rather than waiting `everyMs` after each run, the period
 * does not drift by the time the sample takes, so a lone process does not skip a minute now and then.
 */
export function nextRunDelay(now: number, everyMs: number, after = now): number {
  const offset = SAMPLE_OFFSET_MS % everyMs;
  return Math.floor((after - offset) / everyMs) * everyMs + offset + everyMs - now;
}

/** The timers the sampler waits with (real ones, unref'd; a test passes its own to see and fire them). */
export interface SamplerTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}
const realTimers: SamplerTimers = {
  set: (fn, ms) => setTimeout(fn, ms).unref(),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * The queue-depth sampler (charts, issue 16): at every boundary of `CASHWIRE_QUEUE_SAMPLE_MS` (default each minute,
 * one second past it, by the injected clock) it tries to write the sample of the current minute (delivery/stats.ts
 * sampleQueue). Every process that runs the background jobs runs one; the first to claim a minute writes it and the
 * others write nothing, so several processes (with clocks a few seconds apart) still give one sample a minute. A
 * sampler that tries more often than once a minute only finds its minute taken. Samples past
 * CASHWIRE_QUEUE_SAMPLE_RETENTION_DAYS are pruned by the retention job. After the sample, the same run counts the
 * attempt log's minutes that are due (delivery/stats.ts countDueMinutes: claimed per minute the same way; off with
 * CASHWIRE_COUNT_ATTEMPT_MINUTES=off). One run at a time: the next is aimed once the previous one has ended;
 * start() while started does nothing.
 */
export function createQueueSampler(
  deps: Pick<Deps, 'db' | 'clock' | 'log'> & { config: Pick<Deps['config'], 'queueSamples'> & Partial<Pick<Deps['config'], 'countAttemptMinutes' | 'worker'>> },
  timers: SamplerTimers = realTimers,
) {
  let timer: unknown;
  let running: Promise<unknown> | undefined;
  /** Bumped by each start() and stop(): a run of an earlier start that ends late schedules nothing. */
  let generation = 0;
  let started = false;

  const runOnce = () => sampleQueue(deps.db, deps.clock.now());
  const delays = countDelays(deps.config.worker?.totalTimeoutMs);
  /** The attempt log's minutes due to be counted for the charts (delivery/stats.ts countDueMinutes), unless turned off. */
  const countOnce = () => (deps.config.countAttemptMinutes === false ? Promise.resolve(0) : countDueMinutes(deps.db, deps.clock.now(), { delays }));

  /** Runs a sample now, then aims the next one (`aimedAt`: the time this run was aimed at, by the clock). */
  function run(gen: number, aimedAt: number) {
    const p: Promise<unknown> = runOnce()
      .catch((err) => deps.log.warn({ err }, 'queue sample failed; trying again on the next tick'))
      .then(() => countOnce())
      .catch((err) => deps.log.warn({ err }, 'counting the attempt log failed; trying again on the next tick'))
      .finally(() => {
        if (running === p) running = undefined;
        if (gen !== generation) return;
        const now = deps.clock.now().getTime();
        // Past the time it was aimed at: a timer that fired a hair early does not run twice for one boundary.
        const next = now + nextRunDelay(now, deps.config.queueSamples.everyMs, Math.max(now, aimedAt));
        timer = timers.set(() => {
          timer = undefined;
          if (gen === generation) run(gen, next);
        }, next - now);
      });
    running = p;
  }

  return {
    runOnce,
    countOnce,
    start() {
      if (started) return;
      started = true;
      // The first sample right away: a process started mid-minute fills that minute if no other process has.
      run(++generation, deps.clock.now().getTime());
    },
    async stop() {
      started = false;
      generation++;
      if (timer !== undefined) timers.clear(timer);
      timer = undefined;
      await running;
    },
  };
}
